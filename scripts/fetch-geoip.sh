#!/usr/bin/env bash
# fetch-geoip.sh DIR
#   Puts the bundled GeoIP database into DIR: the country database of the npm
#   package @ip-location-db/geo-whois-asn-country-mmdb (package licence CC0-1.0,
#   data CC BY 4.0 by the NRO; see README.md), pinned by version and checked
#   against SHA-256 sums, with the package's licence files beside it.
#   Re-runnable: a DIR that already holds the right file is left alone.
set -euo pipefail

package='@ip-location-db/geo-whois-asn-country-mmdb'
version='2.3.2026061719'
tarball_sha256='91757a1b06cdcd1955f292e4c4cfc54e091204f998e159a3187f7a2ef3724be0'
mmdb_name='geo-whois-asn-country.mmdb'
mmdb_sha256='c5f7c0e9bd6a6ccb5a2e9634764544a0d08bd0bd8788b8aedfac87bea184c652'

dest=${1:?usage: fetch-geoip.sh DIR}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

if [[ -f $dest/$mmdb_name && $(sha256_of "$dest/$mmdb_name") == "$mmdb_sha256" ]]; then
    exit 0
fi

command -v npm >/dev/null || { echo "fetch-geoip.sh: npm is needed (apt-get install npm)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "$package@$version" >/dev/null 2>"$work/npm.log") || {
    cat "$work/npm.log" >&2
    echo "fetch-geoip.sh: could not download $package@$version from the npm registry" >&2
    exit 1
}
tarball=$(ls "$work"/*.tgz)
if [[ $(sha256_of "$tarball") != "$tarball_sha256" ]]; then
    echo "fetch-geoip.sh: $tarball does not have the pinned SHA-256 $tarball_sha256; refusing it" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$work" package/$mmdb_name package/NRO_LICENSE package/package.json
if [[ $(sha256_of "$work/package/$mmdb_name") != "$mmdb_sha256" ]]; then
    echo "fetch-geoip.sh: $mmdb_name does not have the pinned SHA-256; refusing it" >&2
    exit 1
fi

mkdir -p "$dest"
cp "$work/package/NRO_LICENSE" "$dest/NRO_LICENSE"
cp "$work/package/package.json" "$dest/package.json"
# rename into place: a backend may have the old file mapped
cp "$work/package/$mmdb_name" "$dest/$mmdb_name.new"
mv -f "$dest/$mmdb_name.new" "$dest/$mmdb_name"
echo "fetch-geoip.sh: $package@$version -> $dest/$mmdb_name"
