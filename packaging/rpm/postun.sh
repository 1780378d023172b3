# Vigil: after removing or upgrading the package. The configuration, key
# and CIB stay (RPM has no purge).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
