"""The Gen2 protocol-control bits and CRC-16 a tag backscatters with its EPC."""

PC_LENGTH_SHIFT = 11


def pc_bits(epc: bytes) -> int:
    """PC word: the EPC length in 16-bit words in its top 5 bits, the rest 0."""
    return min((len(epc) + 1) // 2, 31) << PC_LENGTH_SHIFT


def epc_crc(pc: int, epc: bytes) -> int:
    """CRC-16 (ISO/IEC 13239: polynomial 0x1021, preset 0xFFFF, ones' complement) over PC+EPC."""
    reg = 0xFFFF
    for byte in pc.to_bytes(2, "big") + epc:
        reg ^= byte << 8
        for _ in range(8):
            reg = (reg << 1 ^ 0x1021) & 0xFFFF if reg & 0x8000 else reg << 1 & 0xFFFF
    return reg ^ 0xFFFF
