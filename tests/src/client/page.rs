//! What tests read off an HTML page: its CSRF token and the home page's
//! list of users.

/// The first CSRF token in a page.
pub fn csrf_token(html: &str) -> String {
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let start = html.find(marker).expect("page has a CSRF token") + marker.len();
    let end = html[start..].find('"').expect("token ends") + start;
    html[start..end].to_owned()
}

/// The `(name, status)` pairs of the home page's list, unescaped.
pub fn listed_users(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(i) = rest.find("<li data-username=\"") {
        rest = &rest[i + "<li data-username=\"".len()..];
        let attr_end = rest.find('"').expect("attribute ends");
        let attr = unescape(&rest[..attr_end]);
        let text_start = rest.find('>').expect("tag ends") + 1;
        let text_end = rest.find("</li>").expect("li ends");
        let text = unescape(&rest[text_start..text_end]);
        let status = text
            .rsplit_once(": ")
            .map(|(_, s)| s.to_owned())
            .unwrap_or_default();
        assert_eq!(
            text,
            format!("{attr}: {status}"),
            "row text matches its data-username"
        );
        out.push((attr, status));
        rest = &rest[text_end..];
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}
