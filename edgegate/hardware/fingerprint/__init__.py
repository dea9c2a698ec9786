"""UART fingerprint modules of the ZhianTec/Grow family (R307, R503, AS608, ZFM-20)."""
