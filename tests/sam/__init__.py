"""The SAM tier: the functions as `sam build` packages them, run by `sam local invoke`."""
