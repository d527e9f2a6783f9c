//! The blob store on S3.

use async_trait::async_trait;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::Client;
use relay_core::ports::{BlobExists, BlobReader, BlobWriter, StoreError};

/// The S3 client is built on first use: ingest needs it only for payloads over the inline
/// limit, so most cold starts never pay for it.
pub struct S3Blobs {
    config: aws_config::SdkConfig,
    client: std::sync::OnceLock<Client>,
    bucket: String,
}

impl S3Blobs {
    pub fn new(config: &aws_config::SdkConfig, bucket: String) -> Self {
        Self { config: config.clone(), client: std::sync::OnceLock::new(), bucket }
    }

    fn client(&self) -> &Client {
        self.client.get_or_init(|| {
            let s3_config = aws_sdk_s3::config::Builder::from(&self.config).force_path_style(crate::config::custom_endpoint()).build();
            Client::from_conf(s3_config)
        })
    }
}

#[async_trait]
impl BlobWriter for S3Blobs {
    fn bucket(&self) -> &str {
        &self.bucket
    }

    async fn put_blob(&self, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), StoreError> {
        self.client()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type(content_type)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| StoreError::new("s3:PutObject", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}

#[async_trait]
impl BlobReader for S3Blobs {
    async fn get_blob(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self.client().get_object().bucket(&self.bucket).key(key).send().await {
            Ok(out) => {
                let data = out.body.collect().await.map_err(|e| StoreError::new("s3:GetObject", e))?;
                Ok(Some(data.into_bytes().to_vec()))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => Ok(None),
            Err(e) => Err(StoreError::new("s3:GetObject", aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
}

#[async_trait]
impl BlobExists for S3Blobs {
    async fn blob_exists(&self, key: &str) -> Result<bool, StoreError> {
        match self.client().head_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => Ok(false),
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => Ok(false),
            Err(e) => Err(StoreError::new("s3:HeadObject", aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
}

#[async_trait]
impl relay_core::ports::LinkSigner for S3Blobs {
    /// A presigned GET (SigV4 in the query string), made locally: no call to S3.
    async fn link(&self, key: &str, valid_for: std::time::Duration) -> Result<String, StoreError> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(valid_for).map_err(|e| StoreError::new("presign", e))?;
        let request = self
            .client()
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| StoreError::new("s3:GetObject (presign)", aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(request.uri().to_string())
    }
}
