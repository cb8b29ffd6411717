//! A failed queue message comes back after its short backoff, not after
//! the queue's visibility timeout: `SqsQueues::retry_later` on moto's SQS.

use std::time::{Duration, Instant};

use rollcall::queue::sqs::SqsQueues;
use rollcall::queue::{QueueName, Queues, RetryLater};
use rollcall_local_server::gateway::esm::create_queues;

#[tokio::test]
async fn a_message_made_visible_again_comes_back_within_its_backoff() {
    let Some(sqs) = rollcall_tests::moto::sqs_client() else {
        return;
    };
    let prefix = format!("retry-{}-", rollcall_tests::unique_name(""));
    let (push_url, settle_url) = create_queues(&sqs, &prefix).await.expect("queues");
    sqs.send_message()
        .queue_url(&push_url)
        .message_body("{}")
        .message_group_id("0")
        .message_deduplication_id("one")
        .send()
        .await
        .expect("send");
    let receive = || async {
        sqs.receive_message()
            .queue_url(&push_url)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    };
    let first = receive().await;
    assert_eq!(first.len(), 1);
    assert!(
        receive().await.is_empty(),
        "hidden for its visibility (10 s)"
    );
    let queues = SqsQueues::new(sqs.clone(), push_url.clone(), settle_url);
    let after = Duration::from_secs(1);
    queues
        .retry_later(
            QueueName::Push,
            &[RetryLater {
                receipt: first[0].receipt_handle().expect("receipt").to_owned(),
                after,
            }],
        )
        .await
        .expect("change visibility");
    let asked = Instant::now();
    loop {
        if !receive().await.is_empty() {
            break;
        }
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "back within its 1 s backoff, not the 10 s visibility"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
