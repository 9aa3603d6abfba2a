"""What the basics' tasks work on that is not a net: objectives to minimise and densities to sample."""
