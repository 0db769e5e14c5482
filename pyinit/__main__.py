from pyinit.cli import main

main()
