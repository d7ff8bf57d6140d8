//! The reference function of `make bench`. At cold start it builds what a clinic function
//! builds from the AWS SDK (the shared configuration, a DynamoDB client and an EventBridge
//! client) and nothing else; every event is answered with an empty object. Its start-up time,
//! memory and size are the floor the functions are compared with.

use lambda_http::lambda_runtime::{self, LambdaEvent, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let events = aws_sdk_eventbridge::Client::new(&sdk);

    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| {
        // The clients are kept alive for the life of the process, as a function keeps its own.
        let _clients = (&dynamodb, &events);
        async { Ok::<_, lambda_runtime::Error>(json!({})) }
    }))
    .await
}
