"""NXP PN532 13.56 MHz reader (MIFARE/NTAG) on a UART: frame codec, driver, reader."""
