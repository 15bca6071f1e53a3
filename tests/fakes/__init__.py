"""Fake providers: real local servers speaking the providers' wire protocols, and scripted models."""
