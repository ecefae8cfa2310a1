# Shared by the benchmark scripts: the request they send and the collector
# configuration they run. Source it; it defines QUERY, HEADERS and
# collector_config.

# A realistic pixel query (~620 bytes) as the tag sends it.
QUERY='p=0%3Ai1t84hgy%3A5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG&s=0%3Ai1t84hgy%3A95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8&v=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF&e=0%3A1fF6GFGjDOQiEx_OxnTm_tl4BH91eGLF0&c=i1t8q2b6&n=f&f=f&l=https%3A%2F%2Fshop.example.com%2Fcategory%2Fshoes%2Frunning%3Futm_source%3Dnewsletter%26utm_medium%3Demail%26utm_campaign%3Dspring-sale%23reviews&r=https%3A%2F%2Fwww.google.com%2Fsearch%3Fq%3Drunning%2Bshoes%2Bsale%26hl%3Den&i=1ak&j=sj&k=2&w=uq&h=qd&t=pageView&u=(sproduct!sku-12345!dquantity!2!jprice!89.95!)&x=-1f8gq3c'

# Browser request headers.
HEADERS=(
    -H 'User-Agent: Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36'
    -H 'Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'
    -H 'Accept-Encoding: gzip, deflate, br'
    -H 'Accept-Language: en-US,en;q=0.9,nl;q=0.8'
    -H 'Referer: https://shop.example.com/category/shoes/running'
    -H 'Cookie: _dvp=0:i1t84hgy:5AF359Zjq5kUy98u4wQjlIZzWGhN~GlG; _dvs=0:i1t84hgy:95CbiPCYln_1e0a6rFvuRkDkeNnc6KC8'
)

# collector_config PORT CPU DIR: a configuration on one core with the file
# sink writing under DIR.
collector_config() {
    cat <<TOML
[global.server]
port = $1
cores = [$2]
[sinks.hdfs]
type = "hdfs"
[sinks.hdfs.file_strategy]
working_dir = "$3/work"
publish_dir = "$3/publish"
TOML
}
