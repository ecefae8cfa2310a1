#!/usr/bin/env bash
# Builds every package from one command:
#   bash packaging/build.sh [--binary PATH] [--out DIR]
# Without --binary it builds the release binary first. Writes to DIR
# (default target/packages):
#   divolte-collector-<version>-linux-x86_64.tar.gz and .zip
#   divolte-collector_<version>_amd64.deb
#   divolte-collector-<version>-1.x86_64.rpm
# Needs: tar, zip, strip, dpkg-deb, rpmbuild (Debian's `rpm` package).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

binary=""
out="$root/target/packages"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary=$(realpath "$2"); shift 2 ;;
        --out) out=$(realpath -m "$2"); shift 2 ;;
        *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$binary" ]; then
    cargo build --release --locked
    binary="$root/target/release/divolte-collector"
fi
# Packages carry the binary without debug sections (the release profile
# keeps line tables for profiling; they triple the size).
stripped="$(mktemp -d)/divolte-collector"
strip -o "$stripped" "$binary"
binary=$stripped
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
name="divolte-collector-$version"
work=$(mktemp -d)
trap 'rm -rf "$work" "$(dirname "$binary")"' EXIT
mkdir -p "$out"

docs=(README.md ARCHITECTURE.md BENCHMARKS.md docs/compatibility.md docs/mapping.md docs/deployment.md docs/migration.md docs/reliability.md docs/operations.md docs/sinks.md docs/status.png)

# Tarball and zip: bin/, conf/, docs/, and the service files to adapt.
t="$work/$name"
mkdir -p "$t/bin" "$t/conf" "$t/docs" "$t/examples" "$t/service"
install -m 0755 "$binary" "$t/bin/divolte-collector"
install -m 0644 packaging/divolte-collector.toml "$t/conf/divolte-collector.toml"
install -m 0644 config/divolte-collector.toml "$t/conf/divolte-collector.reference.toml"
install -m 0644 "${docs[@]}" "$t/docs/"
cp -r examples/pagetype packaging/examples "$t/examples/"
install -m 0644 packaging/divolte-collector.service "$t/service/"
install -m 0755 packaging/divolte-collector.init "$t/service/"
tar -C "$work" -czf "$out/$name-linux-x86_64.tar.gz" "$name"
rm -f "$out/$name-linux-x86_64.zip"
(cd "$work" && zip -qr "$out/$name-linux-x86_64.zip" "$name")

# The installed tree, shared by the deb and the rpm.
stage() {
    local r=$1 unit_dir=$2 init_dir=$3
    install -D -m 0755 "$binary" "$r/usr/bin/divolte-collector"
    install -D -m 0644 packaging/divolte-collector.toml "$r/etc/divolte/divolte-collector.toml"
    install -D -m 0644 packaging/divolte-collector.service "$r$unit_dir/divolte-collector.service"
    install -D -m 0755 packaging/divolte-collector.init "$r$init_dir/divolte-collector"
    install -d "$r/usr/share/doc/divolte-collector"
    install -m 0644 "${docs[@]}" "$r/usr/share/doc/divolte-collector/"
    install -m 0644 config/divolte-collector.toml "$r/usr/share/doc/divolte-collector/divolte-collector.toml"
    cp -r packaging/examples "$r/usr/share/doc/divolte-collector/"
}

# deb
d="$work/deb"
stage "$d" /lib/systemd/system /etc/init.d
mkdir -p "$d/DEBIAN"
sed "s/@VERSION@/$version/" packaging/deb/control > "$d/DEBIAN/control"
echo "Installed-Size: $(du -ks "$d" | cut -f1)" >> "$d/DEBIAN/control"
install -m 0644 packaging/deb/conffiles "$d/DEBIAN/"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$d/DEBIAN/"
dpkg-deb --root-owner-group --build "$d" "$out/divolte-collector_${version}_amd64.deb" >/dev/null

# rpm
r="$work/rpm-stage"
stage "$r" /usr/lib/systemd/system /etc/rc.d/init.d
mkdir -p "$r/var/lib/divolte/inflight" "$r/var/lib/divolte/published" "$r/var/log/divolte"
rpmbuild -bb --quiet \
    --define "_topdir $work/rpmbuild" \
    --define "pkg_version $version" \
    --define "staged $r" \
    --define "_build_id_links none" \
    --define "debug_package %{nil}" \
    --define "__strip /bin/true" \
    --target x86_64 \
    packaging/rpm/divolte-collector.spec >/dev/null
cp "$work"/rpmbuild/RPMS/x86_64/*.rpm "$out/"

ls -1 "$out"
