"""Builds small MaxMind databases for the geo tests (mmdb-writer from PyPI).

    python3 make_mmdb.py city OUT.mmdb [CITY_NAME]
    python3 make_mmdb.py country OUT.mmdb
"""
import sys

from mmdb_writer import MMDBWriter, MmdbU32
from netaddr import IPSet

kind, out = sys.argv[1], sys.argv[2]
city_name = sys.argv[3] if len(sys.argv) > 3 else "Amsterdam"


def named(geoname_id, name, **extra):
    return dict(geoname_id=MmdbU32(geoname_id), names={"en": name, "nl": name + " (nl)"}, **extra)


netherlands = named(2750405, "Netherlands", iso_code="NL")
city_record = {
    "city": named(2759794, city_name),
    "continent": named(6255148, "Europe", code="EU"),
    "country": netherlands,
    "registered_country": netherlands,
    "represented_country": named(6252001, "United States", iso_code="US", type="military"),
    "location": {"latitude": 52.3740, "longitude": 4.8897, "metro_code": MmdbU32(501), "time_zone": "Europe/Amsterdam"},
    "postal": {"code": "1012"},
    "subdivisions": [named(2749879, "North Holland", iso_code="NH"), named(2759793, "Amsterdam-Centrum", iso_code="AC")],
    "traits": {"autonomous_system_number": MmdbU32(1136), "autonomous_system_organization": "KPN",
               "isp": "KPN B.V.", "organization": "Example Org", "domain": "example.nl",
               "is_anonymous_proxy": False, "is_satellite_provider": True},
}
us_record = {"country": named(6252001, "United States", iso_code="US"), "continent": named(6255149, "North America", code="NA")}

if kind == "city":
    w = MMDBWriter(ip_version=6, database_type="GeoLite2-City", languages=["en", "nl"], ipv4_compatible=True)
    w.insert_network(IPSet(["192.0.2.0/24", "2001:db8::/32"]), city_record)
    w.insert_network(IPSet(["198.51.100.0/24"]), us_record)
    # One address alone: its /24 finds nothing (tests of anonymize_ip).
    w.insert_network(IPSet(["203.0.113.77/32"]), city_record)
else:
    w = MMDBWriter(ip_version=6, database_type="GeoLite2-Country", languages=["en"], ipv4_compatible=True)
    w.insert_network(IPSet(["192.0.2.0/24", "2001:db8::/32"]),
                     {"country": netherlands, "continent": named(6255148, "Europe", code="EU")})
w.to_db_file(out)
