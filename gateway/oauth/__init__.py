"""OAuth 2.0 for third-party apps: signing keys, clients, consent, codes and token families."""
