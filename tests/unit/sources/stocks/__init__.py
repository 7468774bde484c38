"""Tests of the stock-market source (listings, penny filter, Yahoo bars, schedule, command)."""
