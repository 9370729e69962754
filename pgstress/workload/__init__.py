"""What is stored: the seeded epochs and the payload formats that encode them."""
