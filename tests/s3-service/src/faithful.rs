//! s3s-fs with S3's rules for completing a multipart upload, which s3s-fs does not
//! follow: S3 refuses a named part whose ETag is not the part's (InvalidPart), where
//! s3s-fs takes whatever bytes the number holds; and S3 accepts ascending part numbers
//! with gaps, where s3s-fs wants 1, 2, 3 and so on. And S3 lists each part with its
//! ETag, which s3s-fs leaves out (a browser client resuming from the listing skips only
//! the parts it has ETags for). Every other call is s3s-fs's own.

use std::path::PathBuf;

use s3s::crypto::{Checksum, Md5};
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

pub struct Faithful {
    fs: s3s_fs::FileSystem,
    root: PathBuf,
}

impl Faithful {
    pub fn new(root: &str) -> Result<Faithful, String> {
        let fs = s3s_fs::FileSystem::new(root).map_err(|e| format!("{root}: {e:?}"))?;
        let root = std::fs::canonicalize(root).map_err(|e| format!("{root}: {e}"))?;
        Ok(Faithful { fs, root })
    }

    /// Where s3s-fs keeps part `number` of an upload (its layout in version 0.14, as is
    /// the upload's `.upload-<id>.json` below).
    fn part_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root
            .join(format!(".upload_id-{upload_id}.part-{number}"))
    }

    /// Checks each named part against its ETag, then numbers the parts 1, 2, 3 … on disk
    /// and in the request, as s3s-fs wants them.
    async fn renumbered(&self, input: &mut CompleteMultipartUploadInput) -> S3Result<()> {
        let upload_id = input.upload_id.clone();
        // The upload's own id format; anything else is s3s-fs's to refuse.
        if !upload_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Ok(());
        }
        // An upload s3s-fs does not know (completed or aborted) is its own to refuse.
        let known = self.root.join(format!(".upload-{upload_id}.json"));
        if !tokio::fs::try_exists(&known).await.unwrap_or(false) {
            return Ok(());
        }
        let Some(parts) = input
            .multipart_upload
            .as_mut()
            .and_then(|m| m.parts.as_mut())
        else {
            return Ok(());
        };
        let mut last = 0;
        for (index, part) in parts.iter_mut().enumerate() {
            let Some(number) = part.part_number else {
                return Ok(());
            };
            if number <= last {
                return Err(s3_error!(InvalidPartOrder, "part numbers must ascend"));
            }
            last = number;
            let path = self.part_path(&upload_id, number);
            let Ok(actual) = md5_of(&path).await else {
                return Err(s3_error!(InvalidPart, "part {number} was never uploaded"));
            };
            if let Some(etag) = &part.e_tag
                && etag.value().trim_matches('"') != actual
            {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number} does not have that ETag"
                ));
            }
            let to = i32::try_from(index + 1).map_err(|_| s3_error!(InvalidPart))?;
            if to != number {
                tokio::fs::rename(&path, self.part_path(&upload_id, to))
                    .await
                    .map_err(|e| s3_error!(InternalError, "renumbering part {number}: {e}"))?;
                part.part_number = Some(to);
            }
        }
        Ok(())
    }
}

/// The part's MD5 in hex, as s3s-fs gives it for the part's ETag.
async fn md5_of(path: &std::path::Path) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await?;
    let mut md5 = Md5::new();
    let mut buf = vec![0; 1 << 16];
    loop {
        let n = file.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        md5.update(&buf[..n]);
    }
    Ok(md5.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[async_trait::async_trait]
impl S3 for Faithful {
    async fn complete_multipart_upload(
        &self,
        mut req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.renumbered(&mut req.input).await?;
        self.fs.complete_multipart_upload(req).await
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        self.fs.create_bucket(req).await
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        self.fs.copy_object(req).await
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.fs.delete_bucket(req).await
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        self.fs.delete_object(req).await
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        self.fs.delete_objects(req).await
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.fs.get_bucket_location(req).await
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        self.fs.get_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.fs.head_bucket(req).await
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        self.fs.head_object(req).await
    }

    async fn list_buckets(
        &self,
        req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        self.fs.list_buckets(req).await
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        self.fs.list_objects(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        self.fs.list_objects_v2(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.fs.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.fs.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.fs.upload_part(req).await
    }

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        self.fs.upload_part_copy(req).await
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let upload_id = req.input.upload_id.clone();
        let mut listed = self.fs.list_parts(req).await?;
        // s3s-fs knew the id, but only its own format is a file name here.
        let plain = upload_id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        for part in listed.output.parts.iter_mut().flatten() {
            if plain
                && part.e_tag.is_none()
                && let Some(number) = part.part_number
                && let Ok(md5) = md5_of(&self.part_path(&upload_id, number)).await
            {
                part.e_tag = Some(ETag::Strong(md5));
            }
        }
        Ok(listed)
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.fs.abort_multipart_upload(req).await
    }
}
