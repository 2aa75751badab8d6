from cgpipe.cli import app

app(prog_name="cgpipe")
