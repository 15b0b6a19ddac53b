#!/usr/bin/perl
#
# write_test_mmdb.pl - generate the small MaxMind DB (.mmdb) fixtures used by
# the extension's geo tests.
#
# Usage: perl test/geo/write_test_mmdb.pl OUTDIR
#
# Writes into OUTDIR (created if missing):
#   city.mmdb            GeoIP2-City layout (country / registered_country /
#                        city / location), IPv6 tree with IPv4 aliased
#   asn.mmdb             GeoLite2-ASN layout (autonomous_system_number /
#                        autonomous_system_organization)
#   flat.mmdb            ip-location-db flat layout ({ country_code })
#   flat-ipv4-only.mmdb  flat layout, IPv4-only tree
#   many.mmdb            flat layout, 1024 networks (tens of kilobytes, so
#                        that truncating it drops whole pages)
#   bad-utf8.mmdb        flat layout whose record has a map key and a string
#                        value that are not valid UTF-8
#   corrupt.mmdb         flat.mmdb with part of its search tree overwritten:
#                        metadata still parses, IPv4 lookups would fail
#   garbage.mmdb         4096 bytes that are not an mmdb file at all
#   empty.mmdb           zero-length file
#   regress.mmdb         flat layout: the GeoIP database of the pg_regress
#                        and isolation suites (scripts/test.sh points the
#                        cluster's ato_response.geoip_database at it)
#
# Apart from regress.mmdb, only documentation ranges (RFC 5737, RFC 3849) and
# shared address space (RFC 6598) are used, so nothing here resembles real
# geolocation data.  regress.mmdb holds, for each address the sql/ and specs/
# tests look up, the network and country the bundled database (version
# pinned in scripts/fetch-geoip.sh) gives it, so that those tests' expected
# output does not change when the bundled file does; sql/geoip_bundled.sql
# alone reads the real file.  The
# output is deterministic (fixed build_epoch, sorted map keys) so the fixtures
# can be regenerated at test time and compared byte for byte. The tests depend
# on the exact record contents below; change them together.

use strict;
use warnings;

use File::Path qw(make_path);
use File::Spec;
use MaxMind::DB::Writer::Tree;

# Fixed build timestamp (2024-01-01T00:00:00Z) so repeated runs are identical.
my $BUILD_EPOCH = 1704067200;

# Value types for every map key that appears in any of the databases.
# An unknown key is a bug in this script, so it is fatal.
my %KEY_TYPES = (
    # GeoIP2-City
    country            => 'map',
    registered_country => 'map',
    city               => 'map',
    location           => 'map',
    names              => 'map',
    iso_code           => 'utf8_string',
    en                 => 'utf8_string',
    latitude           => 'double',
    longitude          => 'double',
    accuracy_radius    => 'uint16',

    # GeoLite2-ASN
    autonomous_system_number       => 'uint32',
    autonomous_system_organization => 'utf8_string',

    # ip-location-db flat layout
    country_code => 'utf8_string',

    # bad-utf8.mmdb: placeholders overwritten after writing
    badkey => 'utf8_string',
);

sub key_type {
    my ($key) = @_;
    my $type = $KEY_TYPES{$key};
    die "write_test_mmdb.pl: no MMDB type defined for map key '$key'\n"
        unless defined $type;
    return $type;
}

sub new_tree {
    my (%args) = @_;
    my $ip_version = $args{ip_version};

    my $tree = MaxMind::DB::Writer::Tree->new(
        ip_version    => $ip_version,
        record_size   => $args{record_size},
        database_type => $args{database_type},
        languages     => ['en'],
        description   => { en => $args{description} },
        map_key_type_callback    => \&key_type,
        merge_strategy           => 'none',
        remove_reserved_networks => 0,    # test ranges are all "reserved"
        ( $ip_version == 6 ? ( alias_ipv6_to_ipv4 => 1 ) : () ),
    );

    # build_epoch normally defaults to time(); pin it for reproducibility.
    # The writer is private but intended for exactly this purpose.
    $tree->_set_build_epoch($BUILD_EPOCH);
    return $tree;
}

sub write_file {
    my ( $path, $bytes ) = @_;
    open my $fh, '>:raw', $path or die "cannot open $path for writing: $!\n";
    print {$fh} $bytes or die "cannot write $path: $!\n";
    close $fh or die "cannot close $path: $!\n";
}

sub read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or die "cannot open $path: $!\n";
    local $/;
    my $bytes = <$fh>;
    close $fh or die "cannot close $path: $!\n";
    die "cannot read $path\n" unless defined $bytes;
    return $bytes;
}

sub write_tree {
    my ( $tree, $path, @networks ) = @_;
    while (@networks) {
        my ( $network, $record ) = splice @networks, 0, 2;
        $tree->insert_network( $network, $record );
    }
    open my $fh, '>:raw', $path or die "cannot open $path for writing: $!\n";
    $tree->write_tree($fh);
    close $fh or die "cannot close $path: $!\n";
    die "$path is empty after writing\n" unless -s $path;
}

sub city_record {
    my ( $iso, $country, $city, $lat, $lon, $radius ) = @_;
    return {
        country            => { iso_code => $iso, names => { en => $country } },
        registered_country => { iso_code => $iso, names => { en => $country } },
        city               => { names => { en => $city } },
        location           => {
            latitude        => $lat,
            longitude       => $lon,
            accuracy_radius => $radius,
        },
    };
}

sub main {
    die "usage: $0 OUTDIR\n" unless @ARGV == 1 && length $ARGV[0];
    my $dir = $ARGV[0];

    make_path($dir) unless -d $dir;
    die "cannot create directory $dir\n" unless -d $dir;
    my $out = sub { File::Spec->catfile( $dir, $_[0] ) };

    # 1. city.mmdb
    write_tree(
        new_tree(
            ip_version    => 6,
            record_size   => 28,
            database_type => 'ATO-Test-City',
            description   => 'ato_response test fixture (City layout)',
        ),
        $out->('city.mmdb'),
        '192.0.2.0/24' => city_record(
            'GB', 'United Kingdom', 'London', 51.5142, -0.0931, 10
        ),
        '198.51.100.0/24' => city_record(
            'US', 'United States', 'New York', 40.7128, -74.006, 20
        ),
        '203.0.113.0/25' => city_record(
            'JP', 'Japan', 'Tokyo', 35.6895, 139.6917, 50
        ),
        '203.0.113.128/25' => city_record(
            'BR', 'Brazil', 'Sao Paulo', -23.5505, -46.6333, 50
        ),
        '2001:db8:1::/48' => city_record(
            'DE', 'Germany', 'Berlin', 52.52, 13.405, 20
        ),
        '2001:db8:2::/48' => city_record(
            'AU', 'Australia', 'Sydney', -33.8688, 151.2093, 20
        ),
        # Only registered_country: exercises the fallback path.
        '100.64.0.0/24' => { registered_country => { iso_code => 'FR' } },
        # Invalid country code: must be rejected by the extension.
        '100.64.1.0/24' => { country => { iso_code => 'not-a-code' } },
    );

    # 2. asn.mmdb
    write_tree(
        new_tree(
            ip_version    => 6,
            record_size   => 28,
            database_type => 'ATO-Test-ASN',
            description   => 'ato_response test fixture (ASN layout)',
        ),
        $out->('asn.mmdb'),
        '192.0.2.0/24' => {
            autonomous_system_number       => 64500,
            autonomous_system_organization => 'Example Transit Ltd',
        },
        '198.51.100.0/24' => {
            autonomous_system_number       => 64501,
            autonomous_system_organization => 'Example Cloud Hosting',
        },
        '2001:db8:1::/48' => {
            autonomous_system_number       => 64502,
            autonomous_system_organization => 'Example IPv6 Net',
        },
    );

    # 3. flat.mmdb (answers deliberately differ from city.mmdb)
    write_tree(
        new_tree(
            ip_version    => 6,
            record_size   => 28,
            database_type => 'ATO-Test-Flat',
            description   => 'ato_response test fixture (flat layout)',
        ),
        $out->('flat.mmdb'),
        '192.0.2.0/24'    => { country_code => 'NL' },
        '198.51.100.0/24' => { country_code => 'CA' },
        '2001:db8:1::/48' => { country_code => 'SE' },
    );

    # 4. flat-ipv4-only.mmdb
    write_tree(
        new_tree(
            ip_version    => 4,
            record_size   => 24,
            database_type => 'ATO-Test-Flat',
            description   => 'ato_response test fixture (flat layout, IPv4 only)',
        ),
        $out->('flat-ipv4-only.mmdb'),
        '192.0.2.0/24' => { country_code => 'IE' },
    );

    # 5. many.mmdb: 100.65.0.0/24 .. 100.68.255.0/24, codes cycling
    my @codes = qw(GB US DE FR JP BR AU CA);
    my @many;
    for my $b ( 0 .. 3 ) {
        for my $c ( 0 .. 255 ) {
            push @many, sprintf( '100.%d.%d.0/24', 65 + $b, $c ),
                { country_code => $codes[ ( $b + $c ) % @codes ] };
        }
    }
    write_tree(
        new_tree(
            ip_version    => 6,
            record_size   => 28,
            database_type => 'ATO-Test-Many',
            description   => 'ato_response test fixture (1024 networks)',
        ),
        $out->('many.mmdb'),
        @many,
    );

    # 6. bad-utf8.mmdb: the key "badkey" becomes "k\xC3(ey!" (a lead byte
    # without its continuation) and the value "badval" becomes
    # "v\xFFal\xE2\x82" (a byte never valid, then a cut-off sequence).
    write_tree(
        new_tree(
            ip_version    => 6,
            record_size   => 28,
            database_type => 'ATO-Test-Bad-UTF8',
            description   => 'ato_response test fixture (invalid UTF-8)',
        ),
        $out->('bad-utf8.mmdb'),
        '192.0.2.0/24' => { country_code => 'PT', badkey => 'badval' },
    );
    my $bad = read_file( $out->('bad-utf8.mmdb') );
    for my $patch ( [ 'badkey', "k\xC3(ey!" ], [ 'badval', "v\xFFal\xE2\x82" ] ) {
        my ( $from, $to ) = @$patch;
        my $at = index( $bad, $from );
        die "bad-utf8.mmdb: '$from' not found once\n"
            if $at < 0 || index( $bad, $from, $at + 1 ) >= 0;
        substr( $bad, $at, length $from ) = $to;
    }
    write_file( $out->('bad-utf8.mmdb'), $bad );

    # 7a. corrupt.mmdb: flat.mmdb with a run of search-tree bytes set to 0xFF.
    # Every 28-bit record in the run then points far past the data section,
    # which libmaxminddb reports as a corrupt search tree at lookup time,
    # while the metadata at the end of the file is untouched so MMDB_open
    # still succeeds.
    my $CORRUPT_OFFSET = 32;
    my $CORRUPT_LENGTH = 64;
    my $flat           = read_file( $out->('flat.mmdb') );
    die "flat.mmdb too small to corrupt\n"
        if length($flat) < $CORRUPT_OFFSET + $CORRUPT_LENGTH;
    substr( $flat, $CORRUPT_OFFSET, $CORRUPT_LENGTH ) =
        "\xFF" x $CORRUPT_LENGTH;
    write_file( $out->('corrupt.mmdb'), $flat );

    # 7b. garbage.mmdb: 4096 bytes, no metadata marker.
    my $line    = "not a maxmind database\n";
    my $garbage = substr( $line x ( int( 4096 / length $line ) + 1 ), 0, 4096 );
    write_file( $out->('garbage.mmdb'), $garbage );

    # 7c. empty.mmdb
    write_file( $out->('empty.mmdb'), '' );

    # 8. regress.mmdb: the addresses of sql/ and specs/ with the networks and
    # countries of the bundled file.  Addresses the tests use as unknown to
    # every database stay out: 10.0.0.0/8, 127.0.0.0/8, 192.0.2.0/24,
    # 198.18.0.0/15 (detection_kit's spread of addresses), ::1.
    write_tree(
        new_tree(
            ip_version    => 6,
            record_size   => 28,
            database_type => 'ATO-Test-Regress',
            description   => 'ato_response pg_regress GeoIP database',
        ),
        $out->('regress.mmdb'),
        # ingest_bad_input's bulk batch of 1.0.0.0 .. 1.0.255.199
        '1.0.0.0/24'      => { country_code => 'AU' },
        '1.0.1.0/24'      => { country_code => 'CN' },
        '1.0.2.0/23'      => { country_code => 'CN' },
        '1.0.4.0/22'      => { country_code => 'AU' },
        '1.0.8.0/21'      => { country_code => 'CN' },
        '1.0.16.0/20'     => { country_code => 'JP' },
        '1.0.32.0/19'     => { country_code => 'CN' },
        '1.0.64.0/18'     => { country_code => 'JP' },
        '1.0.128.0/17'    => { country_code => 'TH' },
        '1.1.1.0/24'      => { country_code => 'AU' },
        '5.188.8.0/22'    => { country_code => 'RU' },    # 5.188.10.0/24
        '8.8.0.0/15'      => { country_code => 'US' },    # 8.8.8.8, 8.8.4.4
        '81.2.64.0/18'    => { country_code => 'GB' },    # 81.2.69.160
        '85.214.0.0/15'   => { country_code => 'DE' },    # 85.214.132.117
        '133.11.0.0/16'   => { country_code => 'JP' },
        '198.51.100.0/24' => { country_code => 'AU' },
        '200.160.0.0/15'  => { country_code => 'BR' },    # 200.160.0.8, 200.160.2.3
        '203.0.113.0/24'  => { country_code => 'AU' },
        '2001:db8::/32'   => { country_code => 'JP' },
        '2001:4860::/32'  => { country_code => 'US' },    # 2001:4860:4860::8888, 2001:4860:4860::1
        '2a02:2770::/32'  => { country_code => 'NL' },
    );

    return 0;
}

my $rc = eval { main() };
if ( !defined $rc ) {
    my $err = $@ || 'unknown error';
    print STDERR "write_test_mmdb.pl: $err";
    print STDERR "\n" unless $err =~ /\n\z/;
    exit 1;
}
exit $rc;
