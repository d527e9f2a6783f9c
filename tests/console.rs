//! The console in a real headless Chromium (Debian's `chromium` and `chromium-driver`, which
//! `./dev setup` installs where it can), driven over WebDriver against the local stack, as a
//! developer debugging an endpoint would use it: sign in (a wrong key refused), add an endpoint
//! and copy its secret, see a published event arrive with its attempt, make the endpoint fail
//! and see the failed attempts and the next retry, replay and see the new attempt, add a
//! source and see a refused and an accepted request in its log, and, as an operator, the
//! integrations, the dead letters and the payroll runs. Every view is saved as a screenshot (the README's), in
//! `target/console-screenshots/` or `RELAY_CONSOLE_SCREENSHOTS`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hmac::{KeyInit, Mac};
use relay_e2e::receiver::{official_verify, Receiver};
use relay_e2e::stack::ADMIN_KEY;
use relay_e2e::{free_port, post_raw, repo_root, Stack, StackOptions};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);
const ENTER: &str = "\u{E007}";
const TAB: &str = "\u{E004}";

/// chromedriver and the browser it drives; the driver process dies with the test.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    shots: PathBuf,
}

fn chromedriver() -> PathBuf {
    let path = std::env::var_os("RELAY_CHROMEDRIVER").map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    assert!(
        path.exists(),
        "the console's browser tests need Chromium and its driver: `./dev setup` installs Debian's chromium and chromium-driver \
         when it runs as root with apt-get; otherwise install them, or set RELAY_CHROMEDRIVER and RELAY_CHROMIUM ({} is missing)",
        path.display()
    );
    path
}

impl Browser {
    async fn start(width: u32, height: u32) -> Self {
        let port = free_port();
        let driver = tokio::process::Command::new(chromedriver())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let binary = std::env::var("RELAY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", format!("--window-size={width},{height}")]
            }
        });
        let caps = caps.as_object().cloned().expect("object");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() < WAIT => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        };
        let shots =
            std::env::var_os("RELAY_CONSOLE_SCREENSHOTS").map_or_else(|| repo_root().join("target/console-screenshots"), PathBuf::from);
        std::fs::create_dir_all(&shots).expect("screenshot dir");
        Browser { client, _driver: driver, shots }
    }

    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}"))
    }

    async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    async fn text(&self, css: &str) -> String {
        self.find(css).await.text().await.expect("text")
    }

    /// Waits until `script` (a function body answering a boolean) is true, polling; the
    /// console refreshes itself every few seconds, so most waits cover one refresh or two.
    async fn until(&self, what: &str, script: &str) {
        let started = Instant::now();
        loop {
            let ok = self.client.execute(script, vec![]).await.map(|v| v == Value::Bool(true)).unwrap_or(false);
            if ok {
                return;
            }
            if started.elapsed() > WAIT {
                let body = self.client.execute("return document.body.innerText", vec![]).await.unwrap_or_default();
                let html = self.client.execute("return document.getElementById('main').innerHTML", vec![]).await.unwrap_or_default();
                self.shot("timed-out").await;
                panic!(
                    "timed out waiting for {what}; the page shows:\n{}\n\nits main element:\n{}",
                    body.as_str().unwrap_or_default(),
                    html.as_str().unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn go(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
    }

    async fn sign_in(&self, key: &str) {
        self.type_into("#key", key).await;
        self.find("#key").await.send_keys(ENTER).await.expect("enter");
    }
}

/// The deliver function with a short schedule: attempts at 0 s, 3 s and 20 s (with jitter),
/// so a failing pair shows its next retry for a while and then runs out.
async fn stack() -> Stack {
    let env = [("RELAY_RETRY_SCHEDULE", "0,3,20"), ("RELAY_SUBSCRIPTION_CACHE_SECONDS", "0")];
    Stack::start(StackOptions { function_env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Default::default() })
        .await
}

async fn publish(stack: &Stack, event_type: &str, payload: Value) -> String {
    let body = json!({"eventType": event_type, "organizationId": "org-acme", "payload": payload}).to_string();
    let resp = stack.post("/v1/events", &body, Some(&uuid::Uuid::new_v4().to_string())).await;
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.expect("json");
    v["eventId"].as_str().expect("eventId").to_string()
}

/// Paylinq asks for a small run for org-acme (two employees paid, one refused for a bad IBAN)
/// and sets org-acme's monthly schedule.
async fn ask_for_a_payroll_run(stack: &Stack) {
    stack.add_product_key("rk_prod_console_paylinq", "paylinq").await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.aws().await).force_path_style(true).build());
    let employee = |id: &str, iban: &str, gross: &str| {
        json!({"employeeId": id, "name": format!("Employee {id}"), "email": format!("{id}@example.nl"), "iban": iban,
               "grossPay": gross, "pensionScheme": "none", "taxCreditApplied": true})
        .to_string()
    };
    let input = [
        employee("e1", "NL91ABNA0417164300", "2000.00"),
        employee("e2", "NL91ABNA0417164301", "3000.00"),
        employee("e3", "BE68539007547034", "4000.00"),
    ];
    s3.put_object()
        .bucket("relay-local-payroll-123456789012-us-east-1")
        .key("inputs/org-acme/console.jsonl")
        .body(input.join("\n").into_bytes().into())
        .send()
        .await
        .expect("upload");
    let employer = json!({"name": "Acme B.V.", "iban": "NL91ABNA0417164300"});
    let client = reqwest::Client::new();
    let run = json!({"payrollRunId": "run-console", "organizationId": "org-acme", "period": "2025-11", "input": "inputs/org-acme/console.jsonl",
                     "payDate": "2025-11-25", "employer": employer});
    let resp =
        client.post(format!("{}/v1/payroll-runs", stack.url)).bearer_auth("rk_prod_console_paylinq").json(&run).send().await.expect("run");
    assert_eq!(resp.status(), 202);
    let schedule = json!({"requestDay": 20, "payDay": 25, "ruleTable": "nl-2025", "employer": employer});
    let resp = client
        .put(format!("{}/v1/payroll-schedules/org-acme", stack.url))
        .bearer_auth("rk_prod_console_paylinq")
        .json(&schedule)
        .send()
        .await
        .expect("schedule");
    assert_eq!(resp.status(), 200);
}

fn hired(candidate: &str) -> Value {
    json!({"candidateId": candidate, "jobId": "job-1", "startDate": "2026-12-01"})
}

fn stripe_header(secret: &str, body: &str) -> String {
    let t = chrono::Utc::now().timestamp();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex_of(&mac.finalize().into_bytes()))
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_page_is_served_with_a_strict_policy_and_no_inline_script() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..Default::default() }).await;
    let http = reqwest::Client::new();
    let page = http.get(format!("{}/console", stack.url)).send().await.expect("get");
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().expect("csp").to_string();
    for directive in ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script>") && !html.contains("style="), "no inline script or style: {html}");
    for (file, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let r = http.get(format!("{}/console/{file}", stack.url)).send().await.expect("get");
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().expect("ct").starts_with(kind));
    }
    let missing = http.get(format!("{}/console/secrets.txt", stack.url)).send().await.expect("get");
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
    let script = http.get(format!("{}/console/app.js", stack.url)).send().await.expect("get").text().await.expect("js");
    assert!(!script.contains("innerHTML") && !script.contains("localStorage"), "values go on the page as text; the key stays in the tab");
}

#[tokio::test]
async fn an_organisation_debugs_its_endpoint_and_an_operator_sees_the_platform_in_a_real_browser() {
    let stack = stack().await;
    let receiver = Receiver::start().await;
    let broken = Receiver::start().await;
    broken.answer(500, None, Duration::ZERO, 1000);
    let b = Browser::start(1280, 900).await;
    let console = format!("{}/console", stack.url);
    // A payroll run and a schedule, for the operator's payroll view at the end; a dedicated
    // tenant (the stack's own hosting stand-in plays TransIP), for the tenants view.
    ask_for_a_payroll_run(&stack).await;
    let tenant = json!({"organizationId": "org-acme", "name": "Acme B.V.", "slug": "acme", "tier": "professional",
        "deploymentType": "dedicated", "contactEmail": "it@acme.example", "products": ["recruitiq", "nexus"]});
    let created =
        reqwest::Client::new().post(format!("{}/v1/tenants", stack.url)).bearer_auth(ADMIN_KEY).json(&tenant).send().await.expect("tenant");
    assert_eq!(created.status(), 202);

    // Signing in: a wrong key is refused and kept nowhere; the right one with the keyboard alone.
    b.go(&console).await;
    b.find("#key").await;
    b.shot("sign-in").await;
    b.sign_in("rk_org_not_a_key").await;
    b.until("the refusal", "return !document.getElementById('alert').hidden").await;
    let refusal = b.text("#alert").await;
    assert!(refusal.to_lowercase().contains("key"), "{refusal}");
    assert_eq!(b.client.execute("return sessionStorage.length", vec![]).await.expect("js"), json!(0), "a refused key is not kept");
    assert!(!b.client.current_url().await.expect("url").as_str().contains("rk_"), "the key is never in the URL");
    b.shot("wrong-key").await;
    b.sign_in(&stack.org_key).await;
    b.until("the events view", "return document.querySelector('main h1')?.textContent === 'Events'").await;
    assert!(b.text("#who").await.contains("org-acme"));
    b.find("#filter-type").await.click().await.expect("focus");
    b.client.active_element().await.expect("active").send_keys(TAB).await.expect("tab");
    let outline = b.client.execute("return getComputedStyle(document.activeElement).outlineStyle", vec![]).await.expect("js");
    assert_eq!(outline, json!("solid"), "the keyboard focus is visible");

    // An endpoint, created with its secret shown once and copied.
    b.click("nav a[href='#/subscriptions']").await;
    b.type_into("#new-url", &receiver.url).await;
    b.type_into("#new-types", "candidate.*").await;
    b.click("#create-subscription").await;
    let secret = b.text("#secret-value").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    b.click("#copy-secret").await;
    b.until("the copy", "return document.getElementById('copy-secret').textContent === 'Copied'").await;
    b.until("the endpoint's row", &format!("return document.body.innerText.includes({:?})", receiver.url)).await;
    b.shot("endpoints").await;
    let failing = reqwest::Client::new()
        .post(format!("{}/v1/subscriptions", stack.url))
        .bearer_auth(&stack.org_key)
        .json(&json!({"url": broken.url, "eventTypes": ["interview.*"], "description": "always 500"}))
        .send()
        .await
        .expect("subscribe");
    assert_eq!(failing.status(), 201);

    // An event published through the API appears by itself, with its attempt.
    b.click("nav a[href='#/events']").await;
    b.find("#events").await;
    let delivered = publish(&stack, "candidate.hired", hired("cand-1")).await;
    b.until("the new event in the list", &format!("return !!document.querySelector('tr[data-event-id=\"{delivered}\"]')")).await;
    let got = receiver.wait_for(1, WAIT).await;
    official_verify(&secret, &got[0]).expect("the secret the page showed verifies the delivery with the official library");
    b.click(&format!("tr[data-event-id='{delivered}'] a")).await;
    b.until(
        "the delivered attempt",
        "return [...document.querySelectorAll('li.attempt.ok')].some(l => l.textContent.includes('HTTP 200'))",
    )
    .await;
    assert!(b.text("#envelope").await.contains("cand-1"));
    b.shot("event-delivered").await;

    // The endpoint fails: the failed attempts and the next retry show; a replay adds an attempt.
    receiver.answer(500, None, Duration::ZERO, 2);
    let failed = publish(&stack, "candidate.hired", hired("cand-2")).await;
    let exhausted = publish(
        &stack,
        "interview.scheduled",
        json!({"interviewId": "int-1", "candidateId": "cand-2", "dateTime": "2026-12-01T10:00:00Z"}),
    )
    .await;
    b.go(&format!("{console}#/events/{failed}")).await;
    b.until(
        "two failed attempts and the next retry",
        "return document.querySelectorAll('li.attempt.bad').length === 2 && !!document.querySelector('li.next')",
    )
    .await;
    assert!(b.text("li.attempt.bad .status").await.contains("HTTP 500"));
    b.shot("event-failing").await;

    b.go(&format!("{console}#/events?deliveryState=failed")).await;
    b.until(
        "the chart's failures",
        "return /1 delivered, [12] failed/.test(document.querySelector('#chart svg')?.getAttribute('aria-label') || '')",
    )
    .await;
    b.find("#events-table").await;
    let listed = b
        .client
        .execute("return [...document.querySelectorAll('#events-table tbody tr')].map(r => r.dataset.eventId)", vec![])
        .await
        .expect("js");
    let listed: Vec<String> = serde_json::from_value(listed).expect("ids");
    assert!(listed.contains(&failed) && !listed.contains(&delivered), "the failed filter lists only failing events: {listed:?}");
    b.shot("events").await;

    // Typing a filter is not applied (or undone) by a refresh; Apply puts it in the address.
    b.go(&format!("{console}#/events")).await;
    b.find("#events-table").await;
    b.type_into("#filter-type", "interview.scheduled").await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let types = "return [...document.querySelectorAll('#events-table tbody tr td:nth-child(2)')].map(td => td.textContent)";
    let shown: Vec<String> = serde_json::from_value(b.client.execute(types, vec![]).await.expect("js")).expect("types");
    assert!(shown.iter().any(|t| t == "candidate.hired"), "not applied before Apply: {shown:?}");
    assert_eq!(b.find("#filter-type").await.prop("value").await.expect("value").as_deref(), Some("interview.scheduled"));
    b.find("#filter-type").await.send_keys(ENTER).await.expect("enter");
    b.until("the applied filter", "return location.hash.includes('type=interview.scheduled')").await;
    b.until("only interviews", &format!("{types}.every(t => t === 'interview.scheduled')")).await;

    b.go(&format!("{console}#/events/{failed}")).await;
    b.click(".replay-one").await;
    b.until(
        "the replayed attempt",
        "return [...document.querySelectorAll('li.attempt.ok')].some(l => l.textContent.includes('Attempt 3'))",
    )
    .await;
    b.shot("event-replayed").await;

    // A source: its URL, a refused and an accepted request in its log.
    b.click("nav a[href='#/sources']").await;
    b.find("#new-provider").await.select_by_value("stripe").await.expect("provider");
    b.type_into("#new-secret", "whsec_console_stripe").await;
    b.click("#create-source").await;
    let url = b.text("#source-url").await;
    assert!(url.starts_with(&format!("{}/webhooks/stripe/", stack.url)), "{url}");
    let body = json!({"id": "evt_console_1", "object": "event", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_1", "amount": 5000, "currency": "eur"}}}).to_string();
    let (status, _) = post_raw(&url, &[("stripe-signature", "t=1,v1=00".to_string())], &body).await;
    assert_eq!(status, 401);
    let (status, _) = post_raw(&url, &[("stripe-signature", stripe_header("whsec_console_stripe", &body))], &body).await;
    assert_eq!(status, 200);
    b.until(
        "both requests in the log",
        "return !!document.querySelector('tr[data-outcome=refused]') && !!document.querySelector('tr[data-outcome=accepted]')",
    )
    .await;
    assert!(!b.text("tr[data-outcome=refused] .reason").await.is_empty(), "a refused request says why");
    b.shot("source").await;

    // Phone width: nothing runs off the side.
    b.client.set_window_size(390, 844).await.expect("resize");
    b.go(&format!("{console}#/events")).await;
    b.find("#events-table").await;
    let fits = b.client.execute("return document.documentElement.scrollWidth <= window.innerWidth + 1", vec![]).await.expect("js");
    assert_eq!(fits, json!(true), "the events view fits a phone's width");
    b.shot("events-phone").await;
    b.client.set_window_size(1280, 900).await.expect("resize");

    // The operator: integrations with their switches, and the dead letter of the endpoint that always fails.
    b.click("#sign-out").await;
    b.sign_in(ADMIN_KEY).await;
    b.until("the integrations", "return !!document.querySelector('#integrations-table')").await;
    let row = "tr[data-integration='recruitiq-nexus']";
    b.type_into(&format!("{row} input[type=url]"), &receiver.url).await;
    b.click(&format!("{row} button[type=submit]")).await;
    assert!(b.text("#secret-value").await.starts_with("whsec_"), "the integration's secret is shown once");
    let switch = format!("{row} button[role=switch]");
    b.until("the configured switch", &format!("return !document.querySelector(\"{switch}\").disabled")).await;
    let was = b.find(&switch).await.attr("aria-checked").await.expect("attr");
    b.click(&switch).await;
    let flipped = if was.as_deref() == Some("true") { "false" } else { "true" };
    b.until("the switch flipped", &format!("return document.querySelector(\"{switch}\").getAttribute('aria-checked') === '{flipped}'"))
        .await;
    b.shot("integrations").await;
    b.click("nav a[href='#/dead-letters']").await;
    b.until("the dead letter", &format!("return !!document.querySelector('tr[data-event-id=\"{exhausted}\"]')")).await;
    b.shot("dead-letters").await;
    let before = broken.count();
    b.click(&format!("tr[data-event-id='{exhausted}'] .replay-dead-letter")).await;
    b.until("the replay's confirmation", "return document.getElementById('alert').textContent.startsWith('Queued again')").await;
    broken.wait_for(before + 1, WAIT).await;

    // The operator's payroll: the run with its progress, its page with totals, rejections and files.
    b.click("nav a[href='#/payroll']").await;
    let run = "tr[data-run='org-acme/run-console']";
    b.until("the completed run", &format!("return !!document.querySelector(\"{run}[data-status=completed]\")")).await;
    assert!(b.text(&format!("{run} .progress")).await.contains("1 of 1"), "its chunks, done");
    assert!(b.text("tr[data-schedule='org-acme']").await.contains("day 20"), "the organisation's schedule");
    b.shot("payroll").await;
    b.click(&format!("{run} a")).await;
    b.until("the run's totals", "return !!document.getElementById('run-totals')").await;
    let totals = b.text("#run-totals").await;
    assert!(totals.starts_with('2') && totals.contains("€ 6000.00"), "two employees paid, €6,000 gross: {totals}");
    assert!(b.text("#run-rejected").await.contains("IBAN"), "the unpaid employee and why");
    let sepa = b.find("#run-files a[data-file=sepa]").await.attr("href").await.expect("href").expect("a link");
    assert!(
        reqwest::get(&sepa).await.expect("fetch").text().await.expect("text").contains("pain.001.001.03"),
        "the bank file's link works"
    );
    b.shot("payroll-run").await;

    // The operator's tenants: the dedicated one goes live on its own VPS; its page has every step.
    b.click("nav a[href='#/tenants']").await;
    let acme = "tr[data-tenant='org-acme']";
    b.until("the tenant live", &format!("return !!document.querySelector(\"{acme}[data-status=active]\")")).await;
    assert!(b.text(&format!("{acme} .progress")).await.contains("7 of 7"), "every step done");
    assert!(b.text("#fleet-statistics").await.contains("1 dedicated"), "its VPS in the fleet");
    b.shot("tenants").await;
    b.click(&format!("{acme} a")).await;
    b.until("the tenant's steps", "return !!document.querySelector('#tenant-steps tr[data-step=active][data-status=done]')").await;
    assert!(b.text("#tenant-steps tr[data-step=placement]").await.contains("runs at"), "the placement's note");
    b.shot("tenant").await;
    b.client.close().await.expect("close");
}
