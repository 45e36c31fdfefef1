from langsamp_cli.cli import main

main()
