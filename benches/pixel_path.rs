//! Micro-benchmarks of the request path, stage by stage and whole.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::SystemTime;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::sync::Arc;

use apache_avro::types::Value;
use divolte::avro::{default_schema, Datum, FieldKind, RecordLayout};
use divolte::enrich::dedup::DuplicateMemory;
use divolte::enrich::geo::GeoDatabase;
use divolte::enrich::useragent::UserAgentCache;
use divolte::event::checksum;
use divolte::event::pixel::PixelScratch;
use divolte::http::{Method, Request, MAX_HEADERS};
use divolte::mapping::default::{DefaultMapping, FIELD_COUNT};
use divolte::mapping::script::{Environment, Script};
use divolte::mapping::{Inputs, Mapping, Program, Scratch};
use divolte::plan::SourceId;

/// A realistic pixel query (~600 bytes) as the tag sends it.
const QUERY: &str = "p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f&l=https%3A%2F%2Fshop.example.com%2Fcategory%2Fshoes%2Frunning%3Futm_source%3Dnewsletter%26utm_medium%3Demail%26utm_campaign%3Dspring-sale%23reviews&r=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Drunning%2Bshoes%2Bsale%26hl%3Den&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView&u=(sproduct!sku-12345!dquantity!2!jprice!89.95!)&x=-1f8gq3c";

const REQUEST: &[u8] = b"GET /csc-event?p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f&l=https%3A%2F%2Fshop.example.com%2F&t=pageView&x=1 HTTP/1.1\r\nHost: collector.example.com\r\nUser-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36\r\nAccept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\nAccept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9,nl;q=0.8\r\nReferer: https://shop.example.com/category/shoes/running\r\nCookie: _dvp=0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG; _dvs=0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8; session=abc123\r\nConnection: keep-alive\r\n\r\n";

const UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

fn headers() -> Vec<httparse::Header<'static>> {
    vec![
        httparse::Header { name: "Host", value: b"collector.example.com" },
        httparse::Header { name: "User-Agent", value: UA.as_bytes() },
        httparse::Header { name: "Accept", value: b"image/avif,image/webp,*/*;q=0.8" },
    ]
}

fn request<'a>(headers: &'a [httparse::Header<'a>]) -> Request<'a> {
    Request {
        method: Method::Get,
        method_str: "GET",
        path: "/csc-event",
        query: Some(QUERY),
        minor_version: 1,
        headers,
        body: &[],
        peer: SocketAddr::from(([192, 0, 2, 7], 51234)),
        peer_host: "192.0.2.7",
        received: SystemTime::now(),
    }
}

/// A default-schema field value as apache-avro's `Value` (unset fields
/// take their defaults: null, or `"unknown"` for `eventType`).
fn avro_value(kind: &FieldKind, v: Option<Datum<'_>>) -> Value {
    let plain = |d: Datum<'_>| match d {
        Datum::Boolean(b) => Value::Boolean(b),
        Datum::Int(n) => Value::Int(n),
        Datum::Long(n) => Value::Long(n),
        Datum::String(s) => Value::String(s.to_owned()),
        other => panic!("not in the default schema: {other:?}"),
    };
    match (kind, v) {
        (FieldKind::Nullable { null_branch, .. }, None) => Value::Union(u32::from(*null_branch), Box::new(Value::Null)),
        (FieldKind::Nullable { null_branch, .. }, Some(d)) => {
            Value::Union(u32::from(1 - null_branch), Box::new(plain(d)))
        }
        (_, Some(d)) => plain(d),
        (_, None) => Value::String("unknown".into()),
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("stages");
    g.throughput(Throughput::Elements(1));

    g.bench_function("http_head_parse", |b| {
        b.iter(|| {
            let mut h = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut h);
            black_box(req.parse(black_box(REQUEST)).unwrap());
        })
    });

    let canonical = b"c=i1t8q2b6,;e=0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0,;f=f,;h=qd,;i=1ak,;j=sj,;k=2,;l=https://shop.example.com/category/shoes/running?utm_source=newsletter,;n=f,;p=0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG,;s=0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8,;t=pageView,;v=0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF,;w=uq,;";
    g.bench_function("checksum_murmur3", |b| b.iter(|| black_box(checksum::murmur3_signed(black_box(canonical)))));

    let hs = headers();
    let req = request(&hs);
    let mut scratch = PixelScratch::default();
    g.bench_function("pixel_parse_and_verify", |b| {
        b.iter(|| {
            black_box(scratch.parse(black_box(&req), SourceId(0)).unwrap().verify().corrupt);
        })
    });

    let mut cache = UserAgentCache::new(1000);
    g.bench_function("user_agent_cache_hit", |b| b.iter(|| black_box(cache.get(black_box(UA)).name.len())));

    let memory = DuplicateMemory::new(1_000_000);
    let mut key = Vec::new();
    let mut n = 0u64;
    g.bench_function("duplicate_memory", |b| {
        b.iter(|| {
            n += 1;
            let event = format!("0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF{n:x}");
            black_box(memory.seen_before(
                "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG",
                "0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8",
                &event,
                &mut key,
            ))
        })
    });

    // The enrichment step: duplicate memory, cached user agent and a geo
    // lookup, on a database built by tests/make_mmdb.py (skipped without it).
    let dir = std::env::temp_dir().join(format!("divolte-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let db_path = dir.join("city.mmdb");
    let built = std::process::Command::new("python3")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/make_mmdb.py"))
        .arg("city")
        .arg(&db_path)
        .status()
        .is_ok_and(|s| s.success());
    if built {
        let geo = GeoDatabase::open(&db_path).unwrap();
        let ip: std::net::IpAddr = "192.0.2.77".parse().unwrap();
        g.bench_function("geo_lookup", |b| b.iter(|| black_box(geo.lookup(black_box(ip)))));
        g.bench_function("enrichment", |b| {
            b.iter(|| {
                n += 1;
                let event = format!("0:1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF{n:x}");
                let dup = memory.seen_before(
                    "0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG",
                    "0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8",
                    &event,
                    &mut key,
                );
                black_box((dup, cache.get(UA).name.len(), geo.lookup(ip)))
            })
        });
    }
    let layout = Arc::new(default_schema());
    let default_mapping =
        Mapping::standalone("bench", layout.clone(), Program::Default(DefaultMapping::new(&layout).unwrap()));
    let mut out = Vec::with_capacity(1024);
    let mut map_scratch = Scratch::default();
    g.bench_function("default_mapping_and_encode", |b| {
        let event = scratch.parse(&req, SourceId(0)).unwrap().verify();
        let ua = cache.get(UA).clone();
        let inputs = Inputs { event: &event, user_agent: Some(&ua), geo: None, geo_host: event.remote_host };
        b.iter(|| {
            out.clear();
            default_mapping.map_into(inputs, &mut map_scratch, &mut out).unwrap();
            black_box(out.len());
        })
    });

    // The same record through apache-avro's `Value` tree, for comparison
    // with our encoder (a unit test checks they write identical bytes).
    g.bench_function("default_mapping_and_encode_apache_avro", |b| {
        let event = scratch.parse(&req, SourceId(0)).unwrap().verify();
        let ua = cache.get(UA).clone();
        let dm = DefaultMapping::new(&layout).unwrap();
        b.iter(|| {
            let mut values = [None; FIELD_COUNT];
            dm.map(&event, Some(&ua), &mut values);
            let fields =
                layout.fields.iter().zip(values).map(|(f, v)| (f.name.clone(), avro_value(&f.kind, v))).collect();
            black_box(apache_avro::to_avro_datum(&layout.schema, Value::Record(fields)).unwrap().len());
        })
    });

    // The page-type example of examples/pagetype: URI parse, regexes,
    // sections, a seeded digest, custom parameters and ip2geo().
    if built {
        let geo = GeoDatabase::open(&db_path).unwrap();
        let example =
            |f: &str| std::fs::read_to_string(format!("{}/examples/pagetype/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let shop = Arc::new(RecordLayout::parse(&example("schema.avsc")).unwrap());
        let script = Script::compile(&example("mapping.groovy"), &shop, Environment { geo: true }).unwrap();
        let shop_mapping = Mapping::standalone("bench", shop, Program::Script(script));
        g.bench_function("example_script_mapping_and_encode", |b| {
            let event = scratch.parse(&req, SourceId(0)).unwrap().verify();
            let ua = cache.get(UA).clone();
            let inputs = Inputs { event: &event, user_agent: Some(&ua), geo: Some(&geo), geo_host: event.remote_host };
            b.iter(|| {
                out.clear();
                shop_mapping.map_into(inputs, &mut map_scratch, &mut out).unwrap();
                black_box(out.len());
            })
        });
    }
    let _ = std::fs::remove_dir_all(&dir);

    let mut scratch2 = PixelScratch::default();
    g.bench_function("full_event_path", |b| {
        b.iter(|| {
            let event = scratch2.parse(black_box(&req), SourceId(0)).unwrap().verify();
            let ua = event.user_agent.map(|a| cache.get(a));
            let inputs = Inputs { event: &event, user_agent: ua, geo: None, geo_host: event.remote_host };
            out.clear();
            default_mapping.map_into(inputs, &mut map_scratch, &mut out).unwrap();
            black_box(out.len());
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
