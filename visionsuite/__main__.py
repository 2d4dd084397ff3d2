from visionsuite.cli import main

main()
