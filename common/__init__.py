"""The ground floor: errors, model, money, calls, secrets, rates and identifiers.

Nothing here imports anything else of pouracquit; every other floor imports it.
"""
