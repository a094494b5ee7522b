#!/bin/sh
# dakera installer: download the binary for this machine from a release, check its sha256,
# install it, print the next command.
#
#   curl -fsSL https://github.com/OWNER/REPO/releases/latest/download/install.sh | sh
#
# Settings (environment):
#   DAKERA_INSTALL_DIR       where to put `dakera` [default: /usr/local/bin as root,
#                            else ~/.local/bin]
#   DAKERA_VERSION           a release such as 0.1.0 [default: the latest]
#   DAKERA_INSTALL_BASE_URL  where the assets are (dakera-<os>-<arch> and its .sha256)
#                            [default: the GitHub release of DAKERA_REPO]
#   DAKERA_REPO              owner/name on GitHub [default: set by the release workflow]
set -eu

# The release workflow writes the repository here in the copy it attaches to a release.
DEFAULT_REPO="__DAKERA_REPO__"

say() { printf '%s\n' "$*"; }
die() { printf 'dakera install: %s\n' "$*" >&2; exit 1; }

fetch() { # url file
    if command -v curl >/dev/null 2>&1; then
        curl --proto '=https,http' -fsSL --retry 2 -o "$2" "$1" || die "download failed: $1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$1" || die "download failed: $1"
    else
        die "need curl or wget"
    fi
}

sha256_of() { # file
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | awk '{print $1}'
    elif command -v shasum >/dev/null 2>&1; then
        shasum -a 256 "$1" | awk '{print $1}'
    elif command -v openssl >/dev/null 2>&1; then
        openssl dgst -sha256 "$1" | awk '{print $NF}'
    else
        die "need sha256sum, shasum or openssl to check the download"
    fi
}

os=$(uname -s)
arch=$(uname -m)
case "$os" in
    Linux) os=linux ;;
    Darwin) os=macos ;;
    *) die "no build for $os: on Windows download dakera-windows-x86_64.exe from the release page" ;;
esac
case "$arch" in
    x86_64 | amd64) arch=x86_64 ;;
    aarch64 | arm64) if [ "$os" = macos ]; then arch=arm64; else arch=aarch64; fi ;;
    *) die "no build for $os on $arch" ;;
esac
if [ "$os" = macos ] && [ "$arch" = x86_64 ]; then
    die "no build for Intel Macs (only Apple silicon): run it from source, see the README"
fi
asset="dakera-$os-$arch"

base="${DAKERA_INSTALL_BASE_URL:-}"
if [ -z "$base" ]; then
    repo="${DAKERA_REPO:-$DEFAULT_REPO}"
    case "$repo" in
        __*) die "set DAKERA_REPO=owner/name or DAKERA_INSTALL_BASE_URL (or use the install.sh attached to a release)" ;;
    esac
    version="${DAKERA_VERSION:-latest}"
    if [ "$version" = latest ]; then
        base="https://github.com/$repo/releases/latest/download"
    else
        base="https://github.com/$repo/releases/download/v${version#v}"
    fi
fi
base="${base%/}"

if [ -n "${DAKERA_INSTALL_DIR:-}" ]; then
    dir="$DAKERA_INSTALL_DIR"
elif [ "$(id -u)" = 0 ]; then
    dir=/usr/local/bin
else
    dir="$HOME/.local/bin"
fi

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t dakera)
trap 'rm -rf "$tmp"' EXIT INT TERM

say "Downloading $asset from $base"
fetch "$base/$asset" "$tmp/$asset"
fetch "$base/$asset.sha256" "$tmp/$asset.sha256"
expected=$(awk 'NR == 1 {print tolower($1)}' "$tmp/$asset.sha256")
case "$expected" in
    *[!0-9a-f]* | "") die "$asset.sha256 holds no sha256" ;;
esac
[ "${#expected}" -eq 64 ] || die "$asset.sha256 holds no sha256"
actual=$(sha256_of "$tmp/$asset")
if [ "$actual" != "$expected" ]; then
    die "checksum mismatch for $asset (expected $expected, got $actual): nothing installed"
fi
say "Checksum OK ($actual)"

chmod 0755 "$tmp/$asset"
# The first run unpacks the binary into its cache (a few seconds, once per version) and
# proves it runs here (an old glibc shows up now rather than at `serve`).
version_line=$("$tmp/$asset" --version) || die "the downloaded binary does not run on this machine"

mkdir -p "$dir" || die "cannot create $dir (set DAKERA_INSTALL_DIR)"
# Copy next to the target, then rename: atomic, and safe while an old version is running.
cp "$tmp/$asset" "$dir/.dakera.tmp.$$" || die "cannot write to $dir (set DAKERA_INSTALL_DIR or use sudo)"
chmod 0755 "$dir/.dakera.tmp.$$"
mv -f "$dir/.dakera.tmp.$$" "$dir/dakera" || die "cannot install into $dir"

say "Installed $version_line to $dir/dakera"
case ":$PATH:" in
    *":$dir:"*) cmd=dakera ;;
    *) cmd="$dir/dakera"
       say "Note: $dir is not on your PATH (add it: export PATH=\"$dir:\$PATH\")" ;;
esac
say ""
say "Next, start the server (the key is the Bearer token clients send):"
say "    DAKERA_API_KEY=\$(openssl rand -hex 32) $cmd serve"
if [ "$os" = linux ]; then
    say "Or run it as a systemd service:  sudo $cmd service install"
fi
