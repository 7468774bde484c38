"""What people do with alerts: work them (workflow), and who may (auth). The API and CLI call these."""
