# Saves the whole X display ($DISPLAY) as a PNG: python3 screenshot.py FILE (Debian's python3-gi, pulled in by virt-manager).
import sys

import gi

gi.require_version('Gdk', '3.0')
from gi.repository import Gdk  # noqa: E402

root = Gdk.get_default_root_window()
Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height()).savev(sys.argv[1], 'png', [], [])
