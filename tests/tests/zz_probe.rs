use cortex_e2e::redis::RedisServer;
use cortex_e2e::relay::Relay;
use cortex_e2e::ws::WsClient;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn probe() {
    let redis = RedisServer::start();
    let relay = Relay::start(&redis.url());
    let mut conn = redis.connection().await;
    // 1: junk ack right after subscribe, then unsubscribe.
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.send(json!({"type":"subscribe","agent":"pink","mode":"consume","consumer":"p1"}))
        .await;
    ws.send(json!({"type":"ack","stream":"cortex:tasks:high","entry_id":"1-0"}))
        .await;
    ws.send(json!({"type":"unsubscribe"})).await;
    ws.send(json!({"type":"ping"})).await;
    let mut got = vec![];
    while let Ok(v) = tokio::time::timeout(Duration::from_millis(1500), ws.next()).await {
        got.push(v.to_string());
    }
    println!("case 1: {got:?}");
    // 2: a real task delivered, acked, then unsubscribe at once.
    let entry = cortex_e2e::fixtures::task(&mut conn, "cortex:tasks:high", "t-1", "blue").await;
    let mut ws = WsClient::connect(&relay.ws_url()).await;
    ws.send(json!({"type":"subscribe","agent":"blue","mode":"consume","consumer":"b1"}))
        .await;
    let t = ws.next_of_type("task").await;
    ws.send(json!({"type":"ack","stream":"cortex:tasks:high","entry_id":t["entry_id"]}))
        .await;
    ws.send(json!({"type":"unsubscribe"})).await;
    let mut got = vec![];
    while let Ok(v) = tokio::time::timeout(Duration::from_millis(1500), ws.next()).await {
        got.push(v.to_string());
    }
    println!("case 2: {got:?}");
    let p =
        cortex_e2e::fixtures::times_delivered(&mut conn, "cortex:tasks:high", "agent:blue", &entry)
            .await;
    println!("case 2 pending: {p:?}");
}
