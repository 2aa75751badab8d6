from cgpipe.cli import main

main()
