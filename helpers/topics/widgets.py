"""Small ipywidgets shared by the labs (each returns the widget and works headless too)."""

from __future__ import annotations

import time
from typing import Any

from helpers.runtime.i18n import translator

_ = translator(__name__)


class TTLPlayground:
    """Set a key with a TTL from a slider and watch Redis count it down (lab 00)."""

    def __init__(self, r: Any, key: str = "lab00:ttl-demo"):
        import ipywidgets as w

        self.r, self.key = r, key
        self.ttl = w.IntSlider(value=5, min=1, max=30, description="TTL (s)")
        self.set_button = w.Button(description=_("SET with TTL"), button_style="primary")
        self.check_button = w.Button(description=_("GET + TTL now"))
        self.out = w.HTML()
        self.set_button.on_click(lambda _b: self.set_key())
        self.check_button.on_click(lambda _b: self.refresh())
        self.widget = w.VBox([w.HBox([self.ttl, self.set_button, self.check_button]), self.out])

    def set_key(self) -> None:
        self.r.set(self.key, _("set at {time}", time=time.strftime("%H:%M:%S")), ex=self.ttl.value)
        self.refresh()

    def refresh(self) -> tuple[str | None, int]:
        value, ttl = self.r.get(self.key), self.r.ttl(self.key)
        shown = (_("the key is gone (expired or never set)") if value is None
                 else _("value={value!r}, TTL={ttl} s", value=value, ttl=ttl))
        self.out.value = f"<code>{self.key}</code>: {shown}"
        return value, ttl


def ttl_playground(r: Any, key: str = "lab00:ttl-demo") -> TTLPlayground:
    return TTLPlayground(r, key)
