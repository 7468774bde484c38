"""Where market data comes from: exchanges, stock listings, social feeds, and the simulator."""
