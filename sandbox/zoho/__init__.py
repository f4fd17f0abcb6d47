"""zoho emulator"""
