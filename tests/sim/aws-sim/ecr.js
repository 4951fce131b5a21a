'use strict';
// Amazon ECR DescribeImages (AmazonEC2ContainerRegistry_V20150921.*, JSON 1.1) over seeded images.
// Repositories and images belong to an account (the registry id) and a region, and are only
// described for credentials of that account, signed for that region.

const { AwsError, deepClone } = require('./util');

const MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json';
const CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json';

class EcrService {
  constructor(sim) {
    this.sim = sim;
    this.images = [];
  }

  reset() {
    this.images = [];
  }

  // addImage stores a seed-shaped image: {account, region, repository, tags[], digest, size, pushed_at}.
  // Pushing a tag that another image of the repository holds moves the tag, as ECR does.
  addImage(spec, defaults) {
    const img = {
      account: String(spec.account || defaults.account),
      region: spec.region || defaults.region,
      repository: spec.repository,
      tags: (spec.tags || []).slice(),
      digest: spec.digest,
      size: spec.size === undefined ? 0 : Number(spec.size),
      pushed_at: spec.pushed_at === undefined ? Math.floor(Date.now() / 1000) : Number(spec.pushed_at),
      manifest_media_type: spec.manifest_media_type || MANIFEST_TYPE,
      extra: spec,
    };
    if (!/^\d{12}$/.test(img.account) || !img.repository || !/^sha256:[0-9a-f]{64}$/.test(img.digest || '')) {
      throw new AwsError('InvalidImage', 'an image needs a 12-digit account, a repository and a digest sha256:<64 hex>');
    }
    const same = (i) => i.account === img.account && i.region === img.region && i.repository === img.repository;
    for (const other of this.images) {
      if (same(other)) other.tags = other.tags.filter((t) => img.tags.indexOf(t) < 0);
    }
    this.images = this.images.filter((i) => !(same(i) && i.digest === img.digest));
    this.images.push(img);
    return img;
  }

  list() {
    return this.images.map((i) => deepClone(i.extra));
  }

  async call(op, input, call) {
    if (op === 'DescribeImages') return this.describeImages(input, call);
    return undefined;
  }

  describeImages(input, call) {
    const repo = input.repositoryName;
    if (!repo) {
      throw new AwsError('ValidationException', "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null", {});
    }
    const registry = input.registryId || call.account;
    if (registry !== call.account) {
      // No repository policies are simulated, so another registry is never readable.
      throw new AwsError('AccessDeniedException', 'User: ' + call.arn + ' is not authorized to perform: ecr:DescribeImages on resource: arn:aws:ecr:' +
        call.region + ':' + registry + ':repository/' + repo + ' because no resource-based policy allows the ecr:DescribeImages action');
    }
    const inRepo = this.images.filter((i) => i.account === registry && i.region === call.region && i.repository === repo);
    if (!inRepo.length) {
      throw new AwsError('RepositoryNotFoundException', "The repository with name '" + repo + "' does not exist in the registry with id '" + registry + "'");
    }
    let selected;
    if (Array.isArray(input.imageIds) && input.imageIds.length) {
      selected = [];
      for (const id of input.imageIds) {
        const hit = inRepo.find((i) => (id.imageDigest === undefined || i.digest === id.imageDigest) &&
          (id.imageTag === undefined || i.tags.indexOf(id.imageTag) >= 0));
        if (!hit || (id.imageDigest === undefined && id.imageTag === undefined)) {
          throw new AwsError('ImageNotFoundException', "The image with imageId {imageDigest:'" + (id.imageDigest === undefined ? 'null' : id.imageDigest) +
            "', imageTag:'" + (id.imageTag === undefined ? 'null' : id.imageTag) + "'} does not exist within the repository with name '" + repo +
            "' in the registry with id '" + registry + "'");
        }
        if (selected.indexOf(hit) < 0) selected.push(hit);
      }
    } else {
      const status = (input.filter && input.filter.tagStatus) || 'ANY';
      if (['TAGGED', 'UNTAGGED', 'ANY'].indexOf(status) < 0) {
        throw new AwsError('ValidationException', "1 validation error detected: Value '" + status + "' at 'filter.tagStatus' failed to satisfy constraint: Member must satisfy enum value set: [TAGGED, UNTAGGED, ANY]");
      }
      selected = inRepo.filter((i) => status === 'ANY' || (status === 'TAGGED') === (i.tags.length > 0));
    }
    const start = input.nextToken ? Number(Buffer.from(String(input.nextToken), 'base64').toString('utf8')) : 0;
    if (!Number.isInteger(start) || start < 0) throw new AwsError('InvalidParameterException', 'Invalid parameter at \'nextToken\' failed to satisfy constraint: \'Invalid NextToken\'');
    const max = input.maxResults === undefined ? 100 : Number(input.maxResults);
    if (!(Number.isInteger(max) && max >= 1 && max <= 1000)) {
      throw new AwsError('ValidationException', "1 validation error detected: Value '" + input.maxResults + "' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000");
    }
    const page = selected.slice(start, start + max);
    const out = {
      imageDetails: page.map((i) => {
        const d = {
          registryId: i.account,
          repositoryName: i.repository,
          imageDigest: i.digest,
          imageSizeInBytes: i.size,
          imagePushedAt: i.pushed_at,
          imageManifestMediaType: i.manifest_media_type,
          artifactMediaType: CONFIG_TYPE,
        };
        if (i.tags.length) d.imageTags = i.tags.slice();
        return d;
      }),
    };
    if (start + max < selected.length) out.nextToken = Buffer.from(String(start + max)).toString('base64');
    return out;
  }
}

EcrService.meta = {
  name: 'ecr',
  signingName: 'ecr',
  protocol: 'json',
  targetPrefix: 'AmazonEC2ContainerRegistry_V20150921',
  contentType: 'application/x-amz-json-1.1',
  errorFamily: 'coral-json',
  operations: ['DescribeImages'],
};

module.exports = { EcrService };
