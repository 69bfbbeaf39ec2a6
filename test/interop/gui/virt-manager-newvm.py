# Drives virt-manager (Debian virt-manager 4.1) under Xvfb through the New VM wizard against a virtgate QEMU daemon:
# import the volume `guest.img` of the pool `default`, OS Generic Linux 2022, 256 MiB, 1 vCPU, name NAME; in the
# customize step remove the NIC (no virtual network `default` with the qemu driver; the qemu-ga channel stays);
# begin; wait for the guest's marker in its serial log; screenshot of the graphical console; open the
# text console (View > Consoles > Text Console 1); shut down with the toolbar button. Run by virt-manager-qemu.sh inside
# xvfb-run (no window manager: every window sits at 0,0, so widget positions are fixed for this screen size and
# Debian's fonts and theme). Every step waits on window titles or files, never on a bare sleep alone, and saves a
# screenshot (OUT/step-*.png) so a failure shows where it stopped.
# usage: virt-manager-newvm.py URI OUT NAME SERIAL_LOG_DIR MARKER  (writes OUT/result.json)
import glob
import json
import os
import subprocess
import sys
import time

URI, OUT, NAME, LOGDIR, MARKER = sys.argv[1:6]
HERE = os.path.dirname(os.path.abspath(__file__))
result = {'steps': [], 'uuid': None, 'marker': False, 'console_shot': None, 'serial_shot': None, 'shutoff': False}


def step(name):
    result['steps'].append(name)
    print(f'virt-manager-newvm: {name}', flush=True)


def xdo(*args, check=False):
    return subprocess.run(['xdotool', *args], capture_output=True, text=True, check=check)


def windows(visible=True):
    r = xdo('search', *(['--onlyvisible'] if visible else []), '--name', '.', 'getwindowname', '%@')
    return set(filter(None, r.stdout.split('\n')))


def wait_window(title, timeout=30, gone=False):
    end = time.time() + timeout
    while time.time() < end:
        if (title in windows()) != gone:
            return True
        time.sleep(0.2)
    raise RuntimeError(f"window '{title}' {'still shown' if gone else 'not shown'} after {timeout}s (shown: {sorted(windows())})")


def click(x, y, pause=0.6):
    xdo('mousemove', str(x), str(y), 'click', '1')
    time.sleep(pause)


def typed(x, y, text):
    # Click into the field, select what is there, type over it, Tab out (spin buttons commit on focus-out).
    xdo('mousemove', str(x), str(y), 'click', '1')
    time.sleep(0.3)
    xdo('key', 'ctrl+a')
    xdo('type', '--delay', '60', text)
    xdo('key', 'Tab')
    time.sleep(0.4)


def shot(name):
    path = os.path.join(OUT, f'{name}.png')
    subprocess.run(['/usr/bin/python3', os.path.join(HERE, 'screenshot.py'), path], check=False)
    return path


def dark_fraction(path, box=(100, 120, 900, 780)):
    # Share of dark pixels in the VM window's display area: a guest's text console is mostly black, virt-manager's own
    # "Error connecting to graphical console" page is light grey.
    import gi

    gi.require_version('GdkPixbuf', '2.0')
    from gi.repository import GdkPixbuf

    pb = GdkPixbuf.Pixbuf.new_from_file(path)
    px, stride, n = pb.get_pixels(), pb.get_rowstride(), pb.get_n_channels()
    x0, y0, x1, y1 = box
    dark = total = 0
    for y in range(y0, min(y1, pb.get_height()), 4):
        for x in range(x0, min(x1, pb.get_width()), 4):
            i = y * stride + x * n
            total += 1
            dark += px[i] + px[i + 1] + px[i + 2] < 150
    return dark / max(total, 1)


def bright_count(path, box=(0, 70, 1020, 830)):
    # Light pixels (text) in the VM window's console area.
    import gi

    gi.require_version('GdkPixbuf', '2.0')
    from gi.repository import GdkPixbuf

    pb = GdkPixbuf.Pixbuf.new_from_file(path)
    px, stride, n = pb.get_pixels(), pb.get_rowstride(), pb.get_n_channels()
    x0, y0, x1, y1 = box
    return sum(
        1
        for y in range(y0, min(y1, pb.get_height()), 2)
        for x in range(x0, min(x1, pb.get_width()), 2)
        if sum(px[y * stride + x * n : y * stride + x * n + 3]) > 450
    )


def virsh(*args):
    return subprocess.run(['virsh', '-c', URI, *args], capture_output=True, text=True)


def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.3)
    raise RuntimeError(f'{what}: not within {timeout}s')


def marker_seen():
    uuid = virsh('domuuid', NAME).stdout.strip()
    if not uuid:
        return None
    result['uuid'] = uuid
    for f in glob.glob(os.path.join(LOGDIR, f'{uuid}.serial.log')):
        with open(f, errors='replace') as fh:
            if MARKER in fh.read():
                return True
    return None


def remove_device(row_x, row_y):
    click(row_x, row_y)
    click(748, 780)  # Remove
    time.sleep(0.8)
    click(600, 457)  # "Are you sure you want to remove this device?" Yes
    time.sleep(0.8)


vm = subprocess.Popen(
    ['virt-manager', '--no-fork', '--debug', '--connect', URI],
    stdout=open(os.path.join(OUT, 'virt-manager-debug.log'), 'w'),
    stderr=subprocess.STDOUT,
)
try:
    # The manager window, connected (with --show-domain-creator alone virt-manager quits when the wizard closes).
    wait_window('Virtual Machine Manager', 60)
    connected = time.time()
    time.sleep(3)
    click(24, 45)  # Create a new virtual machine
    wait_window('New VM', 30)
    time.sleep(2)  # the connection's capabilities fill the first page
    step('wizard open')
    shot('step-1')
    # By its mnemonic: the radio's position moves with the "KVM is not available" warning (present under TCG only).
    xdo('mousemove', '250', '300')
    xdo('key', 'alt+e')  # Import _existing disk image
    time.sleep(0.5)
    click(440, 470)  # Forward
    step('import existing disk image')
    click(440, 113)  # Browse...
    wait_window('Locate or create storage volume', 30)
    time.sleep(1.5)  # pools listed; `default` is selected first
    shot('step-2-browse')
    click(256, 174)  # the volume guest.img
    click(670, 470)  # Choose Volume
    wait_window('Locate or create storage volume', 30, gone=True)
    step('volume chosen from the default pool')
    click(200, 421)  # OS search field
    xdo('type', '--delay', '60', 'generic')
    time.sleep(2)
    shot('step-2-os')
    click(140, 136)  # Generic Linux 2022
    click(440, 470)  # Forward
    time.sleep(1.5)
    step('os chosen')
    typed(110, 119, '256')  # Memory (MiB)
    typed(110, 175, '1')  # CPUs
    shot('step-3')
    click(440, 470)  # Forward
    time.sleep(1.5)
    typed(240, 119, NAME)
    click(87, 268)  # Customize configuration before install
    shot('step-4')
    click(444, 470)  # Finish
    wait_window(f'{NAME} on QEMU/KVM', 60)
    time.sleep(2)
    step('customize window')
    shot('step-5-customize')
    remove_device(90, 223)  # NIC
    shot('step-5-removed')
    click(78, 20)  # Begin Installation
    step('begin installation')
    wait_for(marker_seen, 90, f'the marker {MARKER} in the serial log of {NAME}')
    result['marker'] = True
    step('guest reached the marker')
    time.sleep(4)  # the graphical console connects and shows the kernel's messages
    result['console_shot'] = shot('graphical-console')
    result['console_dark'] = dark_fraction(result['console_shot'])
    step('graphical console screenshot')
    # View > Consoles > Text Console 1 (the VM's <console type='pty'>): the menu by its mnemonic (the pointer's window
    # has the focus: no window manager), then the submenu by position.
    def consoles_menu(y):
        xdo('mousemove', '500', '400')
        xdo('key', 'alt+v')
        time.sleep(0.8)
        click(215, 188)  # Consoles
        click(403 if y == 214 else 430, y)

    consoles_menu(214)  # Text Console 1
    time.sleep(3)
    result['text_console_shot'] = shot('text-console')
    before = bright_count(result['text_console_shot'])
    # A line typed into the guest's shell on its serial console: the guest echoes it and prints 42, so the terminal
    # gains light pixels only if bytes went both ways. Up to three tries (a slow guest under load), the text console
    # selected again before each retry.
    after = before
    for attempt in range(3):
        if attempt > 0:
            consoles_menu(188)  # Graphical Console VNC
            time.sleep(1)
            consoles_menu(214)
            time.sleep(3)
        click(500, 400)  # focus the terminal (its cursor is hollow until then)
        xdo('key', 'Return')
        xdo('type', '--delay', '60', 'echo VG-TYPED-$((6*7))')
        xdo('key', 'Return')
        time.sleep(2.5)
        after = bright_count(shot('text-console-typed'))
        if after > before + 100:
            break
    result['text_console_bright'] = [before, after]
    result['text_console_tries'] = attempt + 1
    step('text console opened')
    consoles_menu(188)  # back to Graphical Console VNC
    time.sleep(1)
    click(210, 45)  # Shut Down (ACPI power button; no confirmation by default)
    time.sleep(1.5)
    shot('step-7-shutdown')
    try:
        wait_for(lambda: virsh('domstate', NAME).stdout.strip() == 'shut off', 40, 'shut off after the Shut Down button')
    except RuntimeError:
        step('virsh shutdown (fallback)')
        virsh('shutdown', NAME)
        wait_for(lambda: virsh('domstate', NAME).stdout.strip() == 'shut off', 40, 'shut off after virsh shutdown')
    result['shutoff'] = True
    step('shut off')
    shot('step-8-off')
    # The debug log must cover more than 30 s of connection: stay connected that long at least.
    time.sleep(max(3, 33 - (time.time() - connected)))
except Exception as e:  # the test reads result.json and the screenshots
    result['error'] = str(e)
    shot('step-failed')
finally:
    vm.terminate()
    try:
        vm.wait(10)
    except subprocess.TimeoutExpired:
        vm.kill()
    with open(os.path.join(OUT, 'result.json'), 'w') as fh:
        json.dump(result, fh, indent=1)
