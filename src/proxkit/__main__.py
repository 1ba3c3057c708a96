"""`python -m proxkit` runs the `prox` command."""

from proxkit.cli import app

app(prog_name="prox")
