"""xero emulator"""
