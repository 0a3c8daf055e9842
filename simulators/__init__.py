"""The world of RecGym: logged data in, simulated users out.

Import submodules directly (``simulators.logs``, ``simulators.shop``, ``simulators.datasets``).
"""
