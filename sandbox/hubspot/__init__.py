"""hubspot emulator"""
