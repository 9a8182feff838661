"""`python -m newsqa …` runs the command line, as `newsqa …` does."""

from newsqa.bot.cli import main

if __name__ == "__main__":
    main()
