// Page-type mapping for a web shop. The first matching page type wins:
// each block exits the section once it has mapped its fields.
mapping {
    map timestamp() onto 'timestamp'
    map remoteHost() onto 'remoteHost'
    map partyId() onto 'partyId'
    map sessionId() onto 'sessionId'
    map pageViewId() onto 'pageViewId'
    map eventType() onto 'eventType'
    map firstInSession() onto 'firstInSession'
    map location() onto 'location'
    map referer() onto 'referer'
    map referer().isAbsent() onto 'directTraffic'

    def ua = userAgent()
    map ua.name() onto 'browser'
    map ua.deviceCategory() onto 'deviceCategory'
    map ip2geo().countryCode() onto 'countryCode'
    map digest('SHA-256', 'shop-salt').add(partyId()).result().toHexLower() onto 'hashedPartyId'

    def locationUri = parse location() to uri
    def path = locationUri.path()
    def query = locationUri.query()
    map query.value('utm_source') onto 'utmSource'

    section {
        // The home page: / or /index.html
        when { match /^\/(?:index\.html)?$/ against path }.matches() apply {
            map 'home' onto 'pageType'
            exit()
        }

        // Product details: /product/311381
        def product = match /^\/product\/([0-9]{6})$/ against path
        when product.matches apply {
            map 'product_detail' onto 'pageType'
            map product.group(1) onto 'productId'
            exit()
        }

        // Search results: /search?q=red+shoes&page=2
        when path.equalTo('/search') apply {
            map 'search' onto 'pageType'
            map query.value('q') onto 'searchPhrase'
            map { parse query.value('page') to int32 } onto 'searchPage'
            exit()
        }

        when path equalTo '/basket' apply {
            map 'basket' onto 'pageType'
            when eventType().equalTo('addToBasket') apply {
                map eventParameters() onto 'basket'
            }
            exit()
        }

        // Taxonomy pages, up to three levels: /fashion/jeans/regular/
        def taxonomy = match /^\/([a-z0-9-]+)\/(?:([a-z0-9-]+)\/(?:([a-z0-9-]+)\/)?)?$/ against path
        when taxonomy.matches() apply {
            map taxonomy.group(1) onto 'shop'
            map taxonomy.group(2) onto 'section'
            map taxonomy.group(3) onto 'category'
            when taxonomy.group(3).isPresent() apply {
                map 'category' onto 'pageType'
                exit()
            }
            when taxonomy.group(2).isPresent() apply {
                map 'section' onto 'pageType'
                exit()
            }
            map 'shop' onto 'pageType'
        }
    }
}
