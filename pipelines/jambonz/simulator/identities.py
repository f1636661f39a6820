"""Who the simulator knows: one service provider, its two accounts, and four API keys with roles.

The sids are taken from the captures, so simulator answers look like the real server's; the keys
are fake and printed by the banner on purpose. This module must never hold a real credential, and
nothing in the package may log a key, only its role.
"""

from __future__ import annotations

SERVICE_PROVIDER_SID = "43a6715f-583b-41e0-a086-b4f8cc677771"
ACCOUNT_SID = "173c3dbf-acbb-4e31-9668-a4f3445cb971"  # account A
OTHER_ACCOUNT_SID = "5b2a1c7e-9d44-4f0e-8a6b-2f1e3d4c5b6a"  # account B, same service provider
ACCOUNT_KEY = "sim-account-key-0001"  # may read ACCOUNT_SID only
OTHER_ACCOUNT_KEY = "sim-account-key-0002"  # may read OTHER_ACCOUNT_SID only
SERVICE_PROVIDER_KEY = "sim-sp-key-0001"  # may read both accounts and the SP route
ADMIN_KEY = "sim-admin-key-0001"  # may read anything

ACCOUNTS: tuple[str, ...] = (ACCOUNT_SID, OTHER_ACCOUNT_SID)
KEYS: dict[str, tuple[str, str | None]] = {  # key -> (role, the sid it is scoped to)
    ACCOUNT_KEY: ("account", ACCOUNT_SID),
    OTHER_ACCOUNT_KEY: ("account", OTHER_ACCOUNT_SID),
    SERVICE_PROVIDER_KEY: ("service_provider", SERVICE_PROVIDER_SID),
    ADMIN_KEY: ("admin", None),
}
