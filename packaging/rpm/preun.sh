# Vigil: before removing the package ($1 = 0; not on upgrade): the stack
# stops cleanly, its resources moving to the other nodes first.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl stop vigil.target vigil-membershipd.socket >/dev/null 2>&1 || :
    systemctl disable vigil.target >/dev/null 2>&1 || :
fi
