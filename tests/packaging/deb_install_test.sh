#!/bin/sh
# Builds dropq's .deb (as `make deb` does), checks it with lintian, installs
# it into a scratch root with `dpkg --root --force-script-chrootless` (the
# maintainer scripts then run here with DPKG_ROOT set and must touch only the
# root), runs the installed `dropq --version` and a job with `run --once`,
# then removes and purges it. Any failure fails the test (set -e); nothing is
# skipped. Usage: deb_install_test.sh SOURCE_DIR WORK_DIR
set -eu
src=$1
work=$2
build="$work/build"
root="$work/root"

fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. The package, from a build configured for /usr (what `make deb` does).
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >/dev/null
cmake --build "$build" -j 2 --target dropq demo-agent dropq-man dropq-changelog >/dev/null
rm -f "$build"/dropq_*.deb
(cd "$build" && cpack -G DEB >/dev/null)
deb=$(ls "$build"/dropq_*.deb)
[ -f "$deb" ] || fail "no .deb built"

depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
case "$depends" in *bubblewrap*) ;; *) fail "Depends lacks bubblewrap" ;; esac
case "$depends" in *libuv1*) ;; *) fail "Depends lacks libuv1 (shlibdeps)" ;; esac
dpkg-deb -c "$deb" >"$work/contents.txt"
grep -q '\./etc/dropq/dropq\.yaml$' "$work/contents.txt" || fail "no /etc/dropq/dropq.yaml"
grep -q '\./lib/systemd/system/dropq\.service$' "$work/contents.txt" || fail "no dropq.service"
grep -q '\./usr/share/man/man1/dropq\.1\.gz$' "$work/contents.txt" || fail "no man page"
dpkg-deb -I "$deb" conffiles | grep -qx /etc/dropq/dropq.yaml || fail "config is not a conffile"

# 2. lintian: no errors (warnings are printed, not fatal).
lintian --fail-on error "$deb"

# 3. Install into a scratch root.
rm -rf "$root"
mkdir -p "$root/var/lib/dpkg/updates" "$root/var/lib/dpkg/info"
: >"$root/var/lib/dpkg/status"
DPKG="dpkg --root=$root --force-script-chrootless --force-depends --log=/dev/null"
# The scratch root has none of the dependencies (--force-depends): the
# installed binary runs on this machine's libraries.
$DPKG -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i"; }
$DPKG -s dropq | grep -q '^Status: install ok installed' || fail "not installed"
[ -d "$root/var/lib/dropq" ] || fail "postinst made no /var/lib/dropq"
[ -L "$root/etc/systemd/system/multi-user.target.wants/dropq.service" ] || fail "unit not enabled"

version=$("$root/usr/bin/dropq" --version)
echo "$version"
[ "$version" = "dropq $(sed -n 's/^project(dropq VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] || fail "version: $version"

# 4. The installed config, moved into the root (its absolute paths are the
# real system's), runs a job with the installed binary and demo agent.
config="$work/dropq.yaml"
sed -e "s|^root: /var/lib/dropq|root: $root/var/lib/dropq|" \
    -e "s|host: /usr/|host: $root/usr/|" "$root/etc/dropq/dropq.yaml" >"$config"
"$root/usr/bin/dropq" check-config --config "$config" >/dev/null
# A first pass creates the root's layout (the daemon's job), then a job.
"$root/usr/bin/dropq" run --once --config "$config" 2>"$work/run.log" || { cat "$work/run.log" >&2; fail "run --once"; }
"$root/usr/bin/dropq" enqueue --config "$config" -g main -p "hello from the package" >/dev/null
"$root/usr/bin/dropq" run --once --config "$config" 2>"$work/run.log" || { cat "$work/run.log" >&2; fail "run --once"; }
"$root/usr/bin/dropq" jobs --config "$config" | tee "$work/jobs.txt"
grep -q succeeded "$work/jobs.txt" || fail "the job did not succeed"

# 5. remove keeps the state; purge removes it.
$DPKG -r dropq >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -r"; }
[ -f "$root/var/lib/dropq/store/dropq.db" ] || fail "remove deleted the state"
[ ! -e "$root/usr/bin/dropq" ] || fail "remove left the binary"
$DPKG -P dropq >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -P"; }
[ ! -e "$root/var/lib/dropq" ] || fail "purge kept /var/lib/dropq"
[ ! -e "$root/etc/dropq/dropq.yaml" ] || fail "purge kept the conffile"
echo "PASS"
