from voxbox.cli.main import main

main()
