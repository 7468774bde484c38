"""Readers and writers: input files into normalised records, alerts out, bad rows aside."""
