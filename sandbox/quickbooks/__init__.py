"""quickbooks emulator"""
