"""API roles. Each includes every role below it: viewer < operator < approver < admin."""

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # every GET
    OPERATOR = "operator"  # + void a pending transaction (rejects a reading, moves no stock)
    APPROVER = "approver"  # + approve pending transactions and reverse movements (moves stock)
    ADMIN = "admin"  # + API keys and the audit log

    def allows(self, needed: "Role") -> bool:
        return _RANK[self] >= _RANK[needed]


_RANK = {role: rank for rank, role in enumerate(Role)}
