"""Hostile inputs shared by the tests that check the package refuses them."""

import os


class RunsCode:
    """A pickle that runs a command when loaded, as a malicious checkpoint would: it touches `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))
