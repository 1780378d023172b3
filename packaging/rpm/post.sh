# Vigil: after installing ($1 = 1) or upgrading ($1 > 1) the package.
systemd-sysusers vigil.conf || :
systemd-tmpfiles --create vigil.conf || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -eq 1 ]; then
        # Starts at boot once the cluster is set up; nothing starts now.
        systemctl enable vigil.target >/dev/null 2>&1 || :
    else
        echo "vigil: upgraded; the running daemons keep the old version until 'systemctl restart vigil.target' on this node (its resources move away first)"
    fi
fi
if [ -S /run/dbus/system_bus_socket ]; then
    dbus-send --system --type=method_call --dest=org.freedesktop.DBus / org.freedesktop.DBus.ReloadConfig >/dev/null 2>&1 || :
fi
