from billwarden.cli import main

main()
