from siroccod.cli import main

main(prog_name="siroccod")
